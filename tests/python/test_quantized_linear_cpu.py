"""The fast CPU kernels of the quantized linears (csrc/cpu/quantized_linear_cpu.cpp) against the
reference kernels, through the Python face: the same script quantizes nn.Linear layers with
lowbit.quantize_ and runs them under LOWBIT_CPU_KERNELS=reference and under each vectorized kernel
set this CPU runs (subprocesses), then the outputs are compared:
  - one-hot inputs (each output is one dequantized weight): bit-equal;
  - random inputs: within the float32 summation-order bound 2 K 2^-24 (|x| @ |W|^T) plus the
    output dtype's last roundings;
  - int8dq: bit-equal (exact int32 GEMM, the reference's epilogue).
Rows of x cover the GEMV (M <= 8), the fused GEMM (9..256: one or two vectors of x per block, one or
two passes of 64 rows) and the tiled path (M > 128); K = 96 and K = 104 (not a multiple of 16; fpx
rows need a multiple of 8).
tests/cpp/test_quantized_linear_cpu.cpp covers odd shapes, every fpx / uintx width and
non-finite values in-process."""

import os
import subprocess
import sys

import pytest
import torch

SCRIPT = r"""
import sys, torch, lowbit
torch.manual_seed(0)
out = {"kernels": lowbit.build_info()["cpu_kernels"]}
N = 40
FORMATS = ("int8wo", "float8wo", "float8wo_e5m2", "fp6_e3m2", "fp5_e2m2", "fp4_e2m1", "fp3_e1m1", "uint4wo-32",
           "uint3wo-32", "uint2wo-64", "uint5wo-32", "uint6wo-32", "int4dq-32", "float8dq_e4m3_row", "int8dq")
F = torch.nn.functional
for K in (96, 104):
    base = torch.nn.Linear(K, N)
    for name in FORMATS:
        group = name.rsplit("-", 1)[-1]
        if group.isdigit() and K % int(group):
            continue  # uintx groups divide K
        for dt in (torch.float32, torch.bfloat16, torch.float16):
            layer = torch.nn.Linear(K, N).to(dt)
            layer.load_state_dict(base.state_dict())
            lowbit.quantize_(layer, name)
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                exact = not name.startswith(("int8dq", "float8dq"))
                out[f"{name} {K} {dt} eye"] = F.linear(torch.eye(K, dtype=dt), layer.weight) if exact else None
                for shape in ((1, K), (7, K), (17, K), (32, K), (33, K), (64, K), (100, K), (300, K), (2, 3, K),
                              (2, 20, K)):
                    x = torch.randn(shape, generator=g).to(dt)
                    for bias in (True, False):
                        out[f"{name} {K} {dt} {bias} {shape}"] = F.linear(x, layer.weight, layer.bias if bias else None)
torch.save(out, sys.argv[1])
"""


def kernel_sets():
    cap = torch.backends.cpu.get_cpu_capability()
    return (["avx2"] if cap in ("AVX2", "AVX512") else []) + (["avx512"] if cap == "AVX512" else [])


def run(kernels, tmp_path):
    path = tmp_path / f"{kernels}.pt"
    env = dict(os.environ, LOWBIT_CPU_KERNELS=kernels)
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, check=True, capture_output=True, timeout=600)
    return torch.load(path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run("reference", tmp_path_factory.mktemp("ref"))


@pytest.mark.parametrize("kernels", kernel_sets() or [pytest.param("none", marks=pytest.mark.skip("no AVX2"))])
def test_fast_kernels_match_reference(kernels, reference, tmp_path):
    got = run(kernels, tmp_path)
    assert got["kernels"] == kernels and reference["kernels"] == "reference"
    for key, want in reference.items():
        if key == "kernels" or want is None:
            continue
        have = got[key]
        assert have.dtype == want.dtype and have.shape == want.shape, key
        if key.endswith("eye") or key.startswith("int8dq"):
            assert torch.equal(have, want), key
            continue
        name, k = key.split(" ")[:2]
        k = int(k)
        w64, h64 = want.double(), have.double()
        unit = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10, torch.float32: 2.0**-22}[want.dtype]
        # |W| is bounded by the largest one-hot output of the row (float8dq: its activation is
        # rounded to float8 on both sides, the weight scale is at most 448 / 448 * amax).
        eye = reference[key.split(" True")[0].split(" False")[0] + " eye"]
        wmax = eye.double().abs().amax(0) if eye is not None else 4 * w64.abs().amax()
        bound = 2 * k * 2.0**-24 * k * wmax * 4 + unit * (w64.abs() + 1)
        assert ((h64 - w64).abs() <= bound).all(), (key, (h64 - w64).abs().max().item())
