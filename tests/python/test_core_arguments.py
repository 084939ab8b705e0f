"""Arguments of the core ops are checked at the op boundary, with messages that name the
argument and the allowed values (issue 14 item 7). The Meta kernels reject the same calls
(tests/python/test_compile.py::test_meta_kernels_reject_what_cpu_rejects); here are the checks
that need real data, and the ones that must keep accepting what they accepted."""

import pytest
import torch

from lowbit.core import choose_qparams_affine, dequantize_affine, quantize_affine


@pytest.mark.parametrize("qdtype,storage,bad", [("int4", torch.int8, 8), ("int4", torch.int8, -9),
                                                ("uint4", torch.uint8, 16), ("int1", torch.int8, 1)])
def test_dequantize_rejects_codes_outside_the_qdtype(qdtype, storage, bad):
    codes = torch.zeros(2, 8, dtype=storage)
    codes[1, 3] = bad
    scale, zp = torch.ones(2, 1), torch.zeros(2, 1, dtype=torch.int32)
    with pytest.raises(RuntimeError, match=f"code {bad} at flat index 11 is outside qdtype '{qdtype}'"):
        dequantize_affine(codes, (1, 8), scale, zp, qdtype)  # today: dequantized as if valid


def test_quantize_and_dequantize_use_one_range():
    # Every code quantize_affine writes, dequantize_affine accepts (and nothing else).
    x = torch.randn(4, 32) * 10
    for qdtype in ("int2", "int4", "uint3", "int8", "uint8"):
        s, zp = choose_qparams_affine(x, (1, 32), qdtype, "asymmetric")
        q = quantize_affine(x, (1, 32), s, zp, qdtype)
        assert torch.isfinite(dequantize_affine(q, (1, 32), s, zp, qdtype)).all()


def test_scale_may_leave_out_size_one_dims_but_not_misplace_blocks():
    x = torch.randn(6, 8)
    s, zp = choose_qparams_affine(x, (1, 8), "int8")  # (6, 1)
    q = quantize_affine(x, (1, 8), s, zp, "int8")
    assert torch.equal(quantize_affine(x, (1, 8), s.reshape(6), zp.reshape(6), "int8"), q)
    assert torch.equal(dequantize_affine(q, (1, 8), s.reshape(6), zp.reshape(6), "int8"),
                       dequantize_affine(q, (1, 8), s, zp, "int8"))
    # Blocks of (3, 4) are laid out (2, 2): a (4, 1) scale has the right count and the wrong layout.
    s2, zp2 = choose_qparams_affine(x, (3, 4), "int8")
    assert s2.shape == (2, 2)
    with pytest.raises(RuntimeError, match=r"scale has shape \[4, 1\], which does not lay out the blocks"):
        quantize_affine(x, (3, 4), s2.reshape(4, 1), zp2.reshape(4, 1), "int8")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64], ids=str)
def test_floating_scale_and_output_dtypes_still_work(dtype):
    x = torch.randn(4, 16)
    s, zp = choose_qparams_affine(x, (1, 16), "int8", scale_dtype=dtype)
    assert s.dtype == dtype
    q = quantize_affine(x, (1, 16), s, zp, "int8")
    out = dequantize_affine(q, (1, 16), s, zp, "int8", output_dtype=dtype)
    assert out.dtype == dtype and torch.isfinite(out).all()


def test_eps_must_be_a_positive_float32():
    x = torch.zeros(2, 4)
    for bad in (0.0, -1e-3, float("nan"), float("inf"), 1e-50, 1e39):
        with pytest.raises(RuntimeError, match="eps must be a positive, finite float32"):
            choose_qparams_affine(x, (1, 4), "int8", eps=bad)
    s, _ = choose_qparams_affine(x, (1, 4), "int8", eps=1e-6)
    assert (s == torch.tensor(1e-6)).all()


def test_quantized_linear_part_count_error_names_the_format():
    x = torch.randn(2, 8)
    with pytest.raises(RuntimeError, match="quantized_linear: format int8wo takes 2 parts, got 1") as err:
        torch.ops.lowbit.quantized_linear(x, [torch.zeros(8, 8, dtype=torch.int8)], "int8wo")
    assert "_M_range_check" not in str(err.value)  # today: vector::_M_range_check leaks out
