"""scaled_mm's argument checks, early returns and path diagnostics on the CPU (the float32
emulation). The CUDA kernel shares the checks (csrc/ops/scaled_mm_checks.h) and returns early for
the same empty problems, through the same reference, so what holds here holds there; the GPU side
is tests/python/test_float8_cuda.py."""

import pytest
import torch

import lowbit
from lowbit.core import cast_to_float8, kernel_path_counts, reset_kernel_path_counts, scaled_mm, scaled_mm_last_path


def fp8_operands(m, n, k, rowwise=True, dtypes=(torch.float8_e4m3fn, torch.float8_e4m3fn), seed=0):
    gen = torch.Generator().manual_seed(seed)
    qa, sa = cast_to_float8(torch.randn(m, k, generator=gen), dtypes[0], "row" if rowwise else "tensor")
    qb, sb = cast_to_float8(torch.randn(k, n, generator=gen), dtypes[1], "column" if rowwise else "tensor")
    return qa, qb, sa, sb


@pytest.mark.parametrize("rowwise", [False, True])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_empty_problems_follow_the_rule(rowwise, out_dtype):
    bias = torch.randn(24)
    for m, n in ((0, 24), (8, 0), (0, 0)):
        qa, qb, sa, sb = fp8_operands(m, n, 32, rowwise)
        out = scaled_mm(qa, qb, sa, sb, bias[:n], out_dtype, emulate=True)
        assert out.shape == (m, n) and out.dtype == out_dtype
        assert scaled_mm_last_path() == "empty"
    # K = 0: no products, so the result is the bias on every row (zeros without one).
    qa, qb, sa, sb = fp8_operands(8, 24, 0, rowwise)
    out = scaled_mm(qa, qb, sa, sb, bias, out_dtype, emulate=True)
    assert torch.equal(out, bias.to(out_dtype).expand(8, 24))
    assert torch.equal(scaled_mm(qa, qb, sa, sb, None, out_dtype, emulate=True), torch.zeros(8, 24, dtype=out_dtype))
    assert scaled_mm_last_path() == "empty"


def test_empty_problems_pass_opcheck():
    qa, qb, sa, sb = fp8_operands(0, 16, 32)
    torch.library.opcheck(torch.ops.lowbit.scaled_mm.default, (qa, qb, sa, sb, torch.randn(16), torch.float32, False, True),
                          test_utils=("test_faketensor",))
    qa, qb, sa, sb = fp8_operands(8, 16, 0)
    torch.library.opcheck(torch.ops.lowbit.scaled_mm.default, (qa, qb, sa, sb, torch.randn(16), torch.float32, False, True),
                          test_utils=("test_faketensor",))


@pytest.mark.parametrize("dtypes", [(torch.float8_e4m3fn, torch.float8_e5m2), (torch.float8_e5m2, torch.float8_e4m3fn)])
@pytest.mark.parametrize("scales", ["tensor x row", "row x tensor"])
def test_mixed_dtypes_and_scale_granularities(dtypes, scales):
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(24, 40, generator=gen), torch.randn(40, 56, generator=gen)
    qa, sa = cast_to_float8(a, dtypes[0], "tensor" if scales.startswith("tensor") else "row")
    qb, sb = cast_to_float8(b, dtypes[1], "column" if scales.endswith("row") else "tensor")
    out = scaled_mm(qa, qb, sa, sb, None, torch.float32, emulate=True)
    expected = (qa.double() * sa.double()) @ (qb.double() * sb.double())
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    assert scaled_mm_last_path() == "emulated"


def test_sliced_and_offset_operands_equal_their_copies():
    qa, qb, sa, sb = fp8_operands(33, 40, 48)
    ref = scaled_mm(qa[1:], qb, sa[1:], sb, None, torch.float32, emulate=True)
    flat = torch.empty(1 + qa[1:].numel(), dtype=qa.dtype)
    flat[1:] = qa[1:].reshape(-1)
    offset = flat[1:].view(32, 48)  # contiguous, one byte past an aligned start
    assert torch.equal(scaled_mm(offset, qb, sa[1:], sb, None, torch.float32, emulate=True), ref)
    col_major = qb.t().contiguous().t()
    assert torch.equal(scaled_mm(qa[1:], col_major, sa[1:], sb, None, torch.float32, emulate=True), ref)


def test_bias_checks():
    qa, qb, sa, sb = fp8_operands(8, 16, 32)
    with pytest.raises(RuntimeError, match="bias must be float32, bfloat16 or float16, got Int"):
        scaled_mm(qa, qb, sa, sb, torch.zeros(16, dtype=torch.int32), emulate=True)
    with pytest.raises(RuntimeError, match=r"bias must have shape \(N,\) = \(16,\)"):
        scaled_mm(qa, qb, sa, sb, torch.zeros(15), emulate=True)
    # A bias on another device is refused before any kernel runs (meta stands in for a GPU; the
    # CUDA kernel runs the same check, tests/python/test_float8_cuda.py).
    with pytest.raises(RuntimeError, match="all tensors must be on one device: a is on cpu, bias on meta"):
        scaled_mm(qa, qb, sa, sb, torch.zeros(16, device="meta"), emulate=True)
    for b16 in (torch.bfloat16, torch.float16):  # a 16-bit bias is exact in float32
        bias = torch.randn(16).to(b16)
        torch.testing.assert_close(scaled_mm(qa, qb, sa, sb, bias, torch.float32, emulate=True),
                                   scaled_mm(qa, qb, sa, sb, bias.float(), torch.float32, emulate=True), rtol=0, atol=0)


def test_path_counters_count_calls():
    qa, qb, sa, sb = fp8_operands(8, 16, 32)
    reset_kernel_path_counts()
    assert scaled_mm_last_path() == "none"
    before = kernel_path_counts()
    assert set(before) >= {"scaled_mm/cublaslt_outer_vector", "scaled_mm/unit_scale_fallback",
                           "weight_only_linear/gemv", "weight_only_linear/wmma",
                           "weight_only_linear/dequantize_cublas", "int8_dynamic_linear/dp4a",
                           "int8_dynamic_linear/int_mm"}
    assert all(v == 0 for v in before.values())
    for _ in range(3):
        scaled_mm(qa, qb, sa, sb, emulate=True)
    with pytest.raises(RuntimeError, match="emulate=True"):
        scaled_mm(qa, qb, sa, sb)  # refused: records nothing
    after = kernel_path_counts()
    assert after["scaled_mm/emulated"] == 3
    assert sum(after.values()) == 3
    assert lowbit.core.last_kernel_path("scaled_mm") == "emulated"
    assert lowbit.core.last_kernel_path("int8_dynamic_linear") == "none"
    with pytest.raises(ValueError, match="unknown op 'gemm'"):
        lowbit.core.last_kernel_path("gemm")
