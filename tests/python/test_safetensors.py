"""lowbit's C++ safetensors reader / writer (csrc/io/safetensors.cpp) against the `safetensors`
package: Python writes every supported dtype, the C++ test SafetensorsCrossFace (run as a
subprocess of the C++ test binary) checks every value and writes them back, and the package
reads the C++ file bit for bit."""

import os
import subprocess

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from test_optim import cpp_test_binary

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}  # fmt: skip
NOTE = 'quote " backslash \\ ünï €'


def expected_values(dtype):
    """Mirror of expected_values in tests/cpp/test_safetensors.cpp."""
    t = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    if dtype == torch.bool:
        return t.remainder(3) == 0
    if dtype == torch.uint8:
        return (t * 20).to(dtype)
    if not dtype.is_floating_point:
        return (t - 5).to(dtype)
    return ((t - 7) * 0.25).to(dtype)


def same_bytes(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def test_cpp_reads_and_writes_what_the_safetensors_package_does(tmp_path):
    binary = cpp_test_binary()
    if binary is None:
        pytest.skip("the C++ test binary lowbit_tests is not built beside this lowbit (set LOWBIT_TESTS_BINARY)")
    tensors = {name: expected_values(dtype) for name, dtype in DTYPES.items()}
    save_file(tensors, str(tmp_path / "python.safetensors"), metadata={"note": NOTE, "n": "1"})
    run = subprocess.run([binary, "--gtest_filter=SafetensorsCrossFace.*"],
                         env={**os.environ, "LOWBIT_SAFETENSORS_DIR": str(tmp_path)}, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0 and "[  PASSED  ] 1 test" in run.stdout, run.stdout + run.stderr
    back = load_file(str(tmp_path / "cpp.safetensors"))
    assert set(back) == set(tensors)
    for name, t in tensors.items():
        assert same_bytes(back[name], t), name
    with safe_open(str(tmp_path / "cpp.safetensors"), framework="pt") as f:
        assert f.metadata() == {"note": NOTE, "n": "1"}
