"""Shared pytest setup for lowbit: the `cuda` marker and a seeded random generator."""

import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device; skipped when none is available")


def pytest_collection_modifyitems(config, items):
    # A test marked `cuda` is skipped, never failed, on a machine without a GPU.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def rng() -> torch.Generator:
    """A CPU generator seeded per test, so every test draws the same numbers on every run."""
    return torch.Generator().manual_seed(1234)
