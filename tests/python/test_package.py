"""The lowbit package surface: version, build info, CMake prefix, and how op errors read."""

import os
import re

import pytest
import torch

import lowbit
from lowbit import core


def test_version_is_a_version_string():
    assert isinstance(lowbit.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-]?[0-9A-Za-z.]+)?", lowbit.__version__), lowbit.__version__
    assert lowbit.__version__ == lowbit._C.version()


def test_build_info():
    info = lowbit.build_info()
    assert {"cuda", "cuda_archs", "torch_version", "version"} <= set(info)
    assert isinstance(info["cuda"], bool)
    assert isinstance(info["cuda_archs"], list) and all(isinstance(a, str) and a for a in info["cuda_archs"])
    assert bool(info["cuda_archs"]) == info["cuda"]  # archs are listed exactly when CUDA kernels are built
    assert info["version"] == lowbit.__version__
    assert info["cpu_kernels"] in ("avx512", "avx2", "default", "reference")
    major_minor = lambda v: tuple(v.split("+")[0].split(".")[:2])  # noqa: E731
    assert major_minor(info["torch_version"]) == major_minor(torch.__version__)


def test_cmake_prefix_path_exists():
    assert os.path.isdir(lowbit.cmake_prefix_path)
    assert os.path.samefile(lowbit.cmake_prefix_path, os.path.dirname(lowbit.__file__))


def test_ops_are_reachable_through_the_dispatcher():
    for name in core.__all__:
        assert isinstance(getattr(torch.ops.lowbit, name), torch._ops.OpOverloadPacket), name


# (call, phrase the error must contain): each error names what was wrong and what is allowed.
ERRORS = [
    (lambda: core.cast_to_float8(torch.zeros(4, dtype=torch.int32)), r"allowed: torch\.float32, torch\.bfloat16"),
    (lambda: core.cast_to_float8(torch.zeros(4, 4), torch.float16), r"allowed: torch\.float8_e4m3fn, torch\.float8_e5m2"),
    (lambda: core.cast_to_float8(torch.zeros(4, 4), granularity="blockwise"), r"allowed: 'tensor', 'row', 'column'"),
    (lambda: core.cast_to_float8(torch.zeros(4), granularity="row"), r"needs an input with at least 2 dims"),
    (lambda: core.fpx_encode(torch.zeros(4), 4, 3), r"use lowbit\.core\.cast_to_float8"),
    (lambda: core.fpx_encode(torch.zeros(4), 4, 4), r"allowed: ebits >= 1, mbits >= 0, 1 \+ ebits \+ mbits <= 8"),
    (lambda: core.fpx_decode(torch.zeros(4), 3, 2), r"codes dtype torch\.float32 is not supported; allowed: torch\.uint8"),
    (lambda: core.choose_qparams_affine(torch.zeros(4, 8), [1, 8], "int9"), r"allowed: int1\.\.int8, uint1\.\.uint8"),
    (lambda: core.choose_qparams_affine(torch.zeros(4, 8), [1, 3], "int4"), r"does not divide input shape"),
    (lambda: core.choose_qparams_affine(torch.zeros(4, 8), [1, 8], "int4", "symmetric", "float"),
     r"'float' goes with mapping 'asymmetric' only"),
    (lambda: core.pack_uintx(torch.full((3,), 16, dtype=torch.uint8), 4), r"does not fit in 4 bits \(allowed: 0\.\.15\)"),
    (lambda: core.pack_uintx(torch.zeros(3, dtype=torch.uint8), 9), r"allowed: 1\.\.8"),
    (lambda: core.unpack_uintx(torch.zeros(3, dtype=torch.uint8), 4, 7), r"hold at most 6 codes"),
]


@pytest.mark.parametrize("call,phrase", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_op_errors_are_runtime_errors_with_helpful_text(call, phrase):
    with pytest.raises(RuntimeError, match=phrase):
        call()
