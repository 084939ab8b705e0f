"""The vectorized CPU kernels (one build per instruction set) give the reference kernels' bits, in
the Python face: the same script runs under LOWBIT_CPU_KERNELS=reference, default, avx2 and avx512
(those this CPU runs) in subprocesses, and every output must match the reference's exactly
(tests/cpp/test_cpu_kernels.cpp covers many more shapes and cases in-process)."""

import os
import subprocess
import sys

import pytest
import torch

import lowbit

SCRIPT = r"""
import sys, torch, lowbit
from lowbit import core
g = torch.Generator().manual_seed(0)
x = torch.randn(67, 300, generator=g) * torch.exp2(torch.randint(-12, 13, (67, 300), generator=g).float())
x.view(-1)[::53] = float("nan")
x.view(-1)[7::61] = float("inf")
x.view(-1)[9::71] = -float("inf")
out = {"kernels": lowbit.build_info()["cpu_kernels"]}
for dt in (torch.float32, torch.bfloat16, torch.float16):
    xd = x.to(dt)
    for gr in ("tensor", "row", "column"):
        d, s = core.cast_to_float8(xd, torch.float8_e4m3fn, gr)
        out[f"cast {dt} {gr}"] = (d.view(torch.uint8), s)
    out[f"fpx {dt}"] = core.fpx_encode(xd, 3, 2)
    for block in ((1, 300), (1, 30), (67, 300)):
        for mapping, domain in (("symmetric", "int"), ("asymmetric", "int"), ("asymmetric", "float")):
            s, zp = core.choose_qparams_affine(xd, block, "int4", mapping, domain)
            q = core.quantize_affine(xd, block, s, zp, "int4", domain)
            out[f"affine {dt} {block} {mapping} {domain}"] = (s, zp, q, core.dequantize_affine(q, block, s, zp, "int4", domain, dt),
                torch.ops.lowbit.fake_quantize_affine(xd, list(block), "int4", mapping, domain))
out["fpx decode"] = core.fpx_decode(out["fpx torch.float32"], 3, 2, torch.bfloat16)
codes = torch.randint(0, 8, (1001,), generator=g).to(torch.uint8)
out["pack"] = core.pack_uintx(codes, 3)
qa, sa = core.cast_to_float8(torch.randn(40, 64, generator=g), torch.float8_e4m3fn, "row")
qb, sb = core.cast_to_float8(torch.randn(24, 64, generator=g), torch.float8_e4m3fn, "row")
out["scaled_mm"] = core.scaled_mm(qa, qb.t(), sa, sb.t(), torch.randn(24, generator=g), torch.bfloat16, emulate=True)
torch.save(out, sys.argv[1])
"""


def kernel_sets():
    cap = torch.backends.cpu.get_cpu_capability()
    sets = ["reference", "default"]
    if cap in ("AVX2", "AVX512"):
        sets.append("avx2")
    if cap == "AVX512":
        sets.append("avx512")
    return sets


def run(kernels, tmp_path):
    path = tmp_path / f"{kernels}.pt"
    env = dict(os.environ, LOWBIT_CPU_KERNELS=kernels)
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, check=True, capture_output=True, timeout=600)
    return torch.load(path)


def same(a, b):
    if isinstance(a, tuple):
        return all(same(p, q) for p, q in zip(a, b))
    if a.is_floating_point():
        nan = torch.isnan(b)
        return torch.equal(torch.isnan(a), nan) and torch.equal(a[~nan], b[~nan])
    return torch.equal(a, b)


def test_every_kernel_set_gives_the_reference_bits(tmp_path):
    ref = run("reference", tmp_path)
    assert ref["kernels"] == "reference"
    for kernels in kernel_sets()[1:]:
        got = run(kernels, tmp_path)
        assert got["kernels"] == kernels
        for key in ref:
            if key != "kernels":
                assert same(got[key], ref[key]), f"{kernels}: {key}"


def test_default_kernels_are_the_fastest_aten_uses():
    expected = {"AVX512": "avx512", "AVX2": "avx2"}.get(torch.backends.cpu.get_cpu_capability(), "default")
    if "LOWBIT_CPU_KERNELS" not in os.environ:
        assert lowbit.build_info()["cpu_kernels"] == expected


def test_unknown_kernel_set_is_a_clear_error():
    env = dict(os.environ, LOWBIT_CPU_KERNELS="sse9")
    r = subprocess.run([sys.executable, "-c", "import torch, lowbit; lowbit.core.fpx_encode(torch.zeros(4), 3, 2)"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    assert "LOWBIT_CPU_KERNELS='sse9' is not a kernel set; allowed: reference, default, avx2, avx512" in r.stderr
