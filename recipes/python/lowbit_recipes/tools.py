"""Console entry points for the C++ recipes: ``lowbit-train`` and ``lowbit-llama-forward`` on PATH
after ``pip install`` run the binaries shipped in this package (``lowbit_recipes/bin``)."""

from __future__ import annotations

import os
import sys

from . import tool_path


def _exec(name: str) -> None:
    try:
        path = tool_path(name)
    except FileNotFoundError as e:
        sys.exit(f"{name}: {e}")
    os.execv(path, [name, *sys.argv[1:]])


def lowbit_train() -> None:
    """``lowbit-train``: the C++ pretraining recipe."""
    _exec("lowbit-train")


def lowbit_llama_forward() -> None:
    """``lowbit-llama-forward``: logits of the C++ Llama for given weights and tokens."""
    _exec("lowbit-llama-forward")
