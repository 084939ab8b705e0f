"""Shared pytest setup for lowbit: the `cuda` marker and a seeded random generator.

GPU tests carry the `cuda` marker (a test skipped for want of a GPU gets it automatically), so
`pytest -m cuda` (benchmarks/gpu_check.sh, tier 1) runs all of them and nothing else."""

import re

import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device; skipped when none is available")


def _skips_without_gpu(item) -> bool:
    """A test with a skipif whose reason speaks of CUDA or a GPU (e.g. `skipif(not
    torch.cuda.is_available(), reason="needs a CUDA GPU")`) is a GPU test too."""
    return any(re.search(r"\b(cuda|gpu)\b", str(m.kwargs.get("reason", "")), re.IGNORECASE)
               for m in item.iter_markers("skipif"))


@pytest.hookimpl(tryfirst=True)  # before `-m cuda` selects: benchmarks/gpu_check.sh runs exactly these
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("cuda") is None and _skips_without_gpu(item):
            item.add_marker(pytest.mark.cuda)
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
