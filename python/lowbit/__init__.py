"""lowbit: low-bit dtypes for PyTorch training and inference.

The numerics live in C++ as dispatcher ops (``torch.ops.lowbit.*``); this package is a thin
face over them. Importing it loads the ops.
"""

import os as _os

import torch as _torch  # noqa: F401  (loads LibTorch before the extension)

from . import _C
from . import core
from . import float8
from . import optim
from . import inference
from . import qat
from . import sparse
from ._convert import ConvertSummary
from .inference import autoquant, load_quantized, quantize_, save_quantized
from .sparse import sparsify_

__version__: str = _C.version()

#: Prefix for CMake's find_package(lowbit): ``cmake -DCMAKE_PREFIX_PATH=$(python -c
#: 'import lowbit; print(lowbit.cmake_prefix_path)')``, like ``torch.utils.cmake_prefix_path``.
cmake_prefix_path: str = _os.path.dirname(_os.path.abspath(__file__))


def build_info() -> dict:
    """How this copy of lowbit was built: ``cuda`` (bool), ``cuda_archs`` (list of str),
    ``torch_version`` and ``torch_cuda_version`` it was built against, ``version``, and
    ``cpu_kernels``: the CPU kernels the ops run (``"avx512"``, ``"avx2"``, ``"default"`` or
    ``"reference"``; the environment variable ``LOWBIT_CPU_KERNELS`` selects them)."""
    info = _C.build_info()
    return {
        "version": info["version"],
        "cuda": info["cuda"] == "ON",
        "cuda_archs": [a for a in info["cuda_archs"].split(";") if a],
        "torch_version": info["torch_version"],
        "torch_cuda_version": info["torch_cuda_version"] or None,
        "cpu_kernels": info["cpu_kernels"],
    }


__all__ = ["__version__", "build_info", "cmake_prefix_path", "core", "float8", "optim", "inference", "qat", "sparse",
           "quantize_", "autoquant", "save_quantized", "load_quantized", "sparsify_", "ConvertSummary"]


def __getattr__(name: str):
    if name == "recipes":  # moved out of the library package; say where to
        raise AttributeError("lowbit.recipes moved out of the library: the recipes are the package lowbit_recipes "
                             "(import lowbit_recipes; python -m lowbit_recipes.pretrain_llama --help)")
    raise AttributeError(f"module 'lowbit' has no attribute {name!r}")
