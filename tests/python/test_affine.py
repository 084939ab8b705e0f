"""lowbit.core affine quantization against an independent numpy version of the documented formulas.

The formulas (csrc/core/affine_quant.h), all float32, rint = round half to even:
  levels = qmax - qmin, mid = (qmin + qmax + 1) // 2
  symmetric:          scale = max(amax / (levels / 2), eps), zp = 0 (intN) or mid (uintN)
  asymmetric, int:    lo = min(min, 0), hi = max(max, 0), scale = max((hi - lo) / levels, eps),
                      zp = clamp(qmin - rint(lo / scale), qmin, qmax) (int32)
  asymmetric, float:  scale = max((max - min) / levels, eps), zp = min + scale * (mid - qmin)
  quantize:   int:   q = clamp(rint(x / scale) + zp, qmin, qmax)
              float: q = clamp(rint((x - (zp - scale * mid)) / scale), qmin, qmax)
  dequantize: int:   (q - zp) * scale;   float: (q - mid) * scale + zp
"""

import numpy as np
import pytest
import torch

from lowbit.core import choose_qparams_affine, dequantize_affine, quantize_affine

QDTYPES = [f"int{b}" for b in range(1, 9)] + [f"uint{b}" for b in range(1, 9)]
SCHEMES = [("symmetric", "int"), ("asymmetric", "int"), ("asymmetric", "float")]
F32 = np.float32
EPS = F32(np.finfo(np.float32).eps)

# (input shape, block sizes): per-tensor, per-row, per-group 32/64/128, and 3-D inputs.
CASES = [
    ((8, 256), [(8, 256), (1, 256), (1, 32), (1, 64), (1, 128)]),
    ((2, 6, 128), [(2, 6, 128), (1, 1, 128), (1, 1, 32), (1, 3, 64)]),
]


def qrange(qdtype: str):
    signed = qdtype.startswith("int")
    bits = int(qdtype[3:] if signed else qdtype[4:])
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def block_reduce(x: np.ndarray, block_size, fn) -> np.ndarray:
    """fn over each block: view x as (n0/b0, b0, n1/b1, b1, ...) and reduce the b axes."""
    split = []
    for n, b in zip(x.shape, block_size):
        split += [n // b, b]
    return fn(x.reshape(split), axis=tuple(range(1, 2 * x.ndim, 2)))


def expand(p: np.ndarray, block_size) -> np.ndarray:
    """One value per block -> one value per element."""
    for axis, b in enumerate(block_size):
        p = np.repeat(p, b, axis=axis)
    return p


def ref_choose_qparams(x: np.ndarray, block_size, qdtype, mapping, domain, eps=EPS):
    qmin, qmax = qrange(qdtype)
    levels, mid = F32(qmax - qmin), (qmin + qmax + 1) // 2
    mn, mx = block_reduce(x, block_size, np.min), block_reduce(x, block_size, np.max)
    if mapping == "symmetric":
        amax = np.maximum(np.abs(mn), np.abs(mx))
        scale = np.maximum(amax / (levels / F32(2)), eps)
        zp = np.full(scale.shape, 0 if qmin < 0 else mid, dtype=np.int32)
    elif domain == "int":
        lo, hi = np.minimum(mn, F32(0)), np.maximum(mx, F32(0))
        scale = np.maximum((hi - lo) / levels, eps)
        zp = np.clip(F32(qmin) - np.rint(lo / scale), F32(qmin), F32(qmax)).astype(np.int32)
    else:
        scale = np.maximum((mx - mn) / levels, eps)
        zp = mn + scale * F32(mid - qmin)
    return scale.astype(F32), zp


def ref_quantize(x, scale_e, zp_e, qdtype, domain):
    qmin, qmax = qrange(qdtype)
    mid = F32((qmin + qmax + 1) // 2)
    if domain == "int":
        q = np.rint(x / scale_e) + zp_e.astype(F32)
    else:
        q = np.rint((x - (zp_e - scale_e * mid)) / scale_e)
    return np.clip(q, F32(qmin), F32(qmax)).astype(np.int32)


def ref_dequantize(q, scale_e, zp_e, qdtype, domain):
    qmin, qmax = qrange(qdtype)
    mid = F32((qmin + qmax + 1) // 2)
    if domain == "int":
        return (q.astype(F32) - zp_e.astype(F32)) * scale_e
    return (q.astype(F32) - mid) * scale_e + zp_e


def sample(shape, rng) -> torch.Tensor:
    """Rows of different ranges and offsets (so asymmetric differs from symmetric), with zeros."""
    x = torch.randn(shape, generator=rng) * torch.exp2(torch.randint(-4, 5, shape[:-1] + (1,), generator=rng).float())
    x = x + torch.randn(shape[:-1] + (1,), generator=rng)
    x.view(-1)[::5] = 0.0
    return x


@pytest.mark.parametrize("qdtype", QDTYPES)
@pytest.mark.parametrize("mapping,domain", SCHEMES, ids=lambda s: s)
def test_round_trip_matches_reference_and_bound(qdtype, mapping, domain, rng):
    qmin, qmax = qrange(qdtype)
    storage = torch.int8 if qdtype.startswith("int") else torch.uint8
    for shape, block_sizes in CASES:
        x = sample(shape, rng)
        xn = x.numpy()
        for block_size in block_sizes:
            scale, zp = choose_qparams_affine(x, block_size, qdtype, mapping, domain)
            blocks = tuple(n // b for n, b in zip(shape, block_size))
            assert scale.shape == blocks and zp.shape == blocks
            assert scale.dtype == torch.float32
            assert zp.dtype == (torch.int32 if domain == "int" else torch.float32)
            q = quantize_affine(x, block_size, scale, zp, qdtype, domain)
            assert q.dtype == storage and q.shape == x.shape
            assert int(q.min()) >= qmin and int(q.max()) <= qmax
            xr = dequantize_affine(q, block_size, scale, zp, qdtype, domain)
            assert xr.dtype == torch.float32 and xr.shape == x.shape

            # Bit-exact agreement with the numpy version of the documented formulas.
            s_ref, zp_ref = ref_choose_qparams(xn, block_size, qdtype, mapping, domain)
            assert np.array_equal(scale.numpy(), s_ref)
            assert np.array_equal(zp.numpy(), zp_ref)
            s_e, zp_e = expand(s_ref, block_size), expand(zp_ref, block_size)
            q_ref = ref_quantize(xn, s_e, zp_e, qdtype, domain)
            assert np.array_equal(q.numpy().astype(np.int32), q_ref)
            assert np.array_equal(xr.numpy(), ref_dequantize(q_ref, s_e, zp_e, qdtype, domain))

            # Every element lies in its block's representable range, so the error is at most
            # scale / 2, plus float32 rounding of the divisions and products.
            err = np.abs(xr.numpy().astype(np.float64) - xn)
            offset = np.abs(zp_e.astype(np.float64)) * (s_e if domain == "int" else 1.0)
            slack = 2.0**-20 * (np.abs(xn) + offset + s_e * 2.0**8)
            assert (err <= s_e / 2 + slack).all(), (qdtype, mapping, domain, block_size, (err - s_e / 2).max())

            # The zero point makes 0.0 exact (int domain; float domain gives no such promise).
            if domain == "int":
                assert (xr[x == 0] == 0).all()


@pytest.mark.parametrize("qdtype", ["int4", "uint4", "int8"])
def test_low_precision_inputs_outputs_and_options(qdtype, rng):
    x = sample((4, 64), rng)
    block = (1, 32)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        xl = x.to(dtype)
        s, zp = choose_qparams_affine(xl, block, qdtype, "asymmetric")
        s32, zp32 = choose_qparams_affine(xl.float(), block, qdtype, "asymmetric")
        assert torch.equal(s, s32) and torch.equal(zp, zp32)
        q = quantize_affine(xl, block, s, zp, qdtype)
        assert torch.equal(q, quantize_affine(xl.float(), block, s, zp, qdtype))
        out = dequantize_affine(q, block, s, zp, qdtype, output_dtype=dtype)
        assert out.dtype == dtype
        assert torch.equal(out, dequantize_affine(q, block, s, zp, qdtype).to(dtype))
    # scale_dtype and eps.
    s_bf, _ = choose_qparams_affine(x, block, qdtype, scale_dtype=torch.bfloat16)
    assert s_bf.dtype == torch.bfloat16
    assert torch.equal(s_bf, choose_qparams_affine(x, block, qdtype)[0].to(torch.bfloat16))
    s_eps, _ = choose_qparams_affine(x * 1e-6, block, qdtype, eps=0.5)
    assert (s_eps == 0.5).all()
    s_zero, _ = choose_qparams_affine(torch.zeros(2, 32), (1, 32), qdtype)
    assert (s_zero == torch.finfo(torch.float32).eps).all()  # the default eps
    # Non-contiguous input.
    xt = sample((64, 4), rng).t()
    s, zp = choose_qparams_affine(xt, block, qdtype)
    assert torch.equal(quantize_affine(xt, block, s, zp, qdtype), quantize_affine(xt.contiguous(), block, s, zp, qdtype))


def test_known_values_int4_and_uint4():
    # Symmetric int4 per row: amax 7.5 -> scale 7.5 / 7.5 = 1; codes are rint(x) clamped to [-8, 7].
    x = torch.tensor([[7.5, -7.5, 2.5, 3.5, -0.5, 0.0, 1.2, -6.6]])
    s, zp = choose_qparams_affine(x, (1, 8), "int4")
    assert s.tolist() == [[1.0]] and zp.tolist() == [[0]]
    q = quantize_affine(x, (1, 8), s, zp, "int4")
    assert q.tolist() == [[7, -8, 2, 4, 0, 0, 1, -7]]  # 7.5 clamps to 7; ties go to even
    # Asymmetric uint4 over [0, 15]: scale 1, zero point 0; float domain: zp = 0 + 1 * 8.
    y = torch.arange(16, dtype=torch.float32).view(1, 16)
    s, zp = choose_qparams_affine(y, (1, 16), "uint4", "asymmetric")
    assert s.item() == 1.0 and zp.item() == 0
    assert quantize_affine(y, (1, 16), s, zp, "uint4").tolist() == [list(range(16))]
    s, zp = choose_qparams_affine(y, (1, 16), "uint4", "asymmetric", "float")
    assert s.item() == 1.0 and zp.item() == 8.0
    q = quantize_affine(y, (1, 16), s, zp, "uint4", "float")
    assert q.tolist() == [list(range(16))]
    assert torch.equal(dequantize_affine(q, (1, 16), s, zp, "uint4", "float"), y)
    # Signed int4 in the float domain covers the same range with codes -8..7.
    s, zp = choose_qparams_affine(y, (1, 16), "int4", "asymmetric", "float")
    q = quantize_affine(y, (1, 16), s, zp, "int4", "float")
    assert q.tolist() == [list(range(-8, 8))]
    assert torch.equal(dequantize_affine(q, (1, 16), s, zp, "int4", "float"), y)


def test_errors():
    x = torch.randn(8, 64)
    s, zp = choose_qparams_affine(x, (1, 32), "int4")
    q = quantize_affine(x, (1, 32), s, zp, "int4")
    for bad in ("int9", "float4", "uint0", "int", "int16", "bf16"):
        with pytest.raises(RuntimeError, match=f"unknown qdtype '{bad}'"):
            choose_qparams_affine(x, (1, 32), bad)
        with pytest.raises(RuntimeError, match="unknown qdtype"):
            quantize_affine(x, (1, 32), s, zp, bad)
        with pytest.raises(RuntimeError, match="unknown qdtype"):
            dequantize_affine(q, (1, 32), s, zp, bad)
    with pytest.raises(RuntimeError, match="does not divide input shape"):
        choose_qparams_affine(x, (1, 48), "int4")
    with pytest.raises(RuntimeError, match="does not divide input shape"):
        choose_qparams_affine(x, (3, 32), "int4")
    with pytest.raises(RuntimeError, match="must have one entry per input dim"):
        choose_qparams_affine(x, (32,), "int4")
    with pytest.raises(RuntimeError, match="must have one entry per input dim"):
        quantize_affine(x, (1, 1, 32), s, zp, "int4")
    with pytest.raises(RuntimeError, match="must be >= 1|positive divisor"):
        choose_qparams_affine(x, (0, 32), "int4")
    with pytest.raises(RuntimeError, match="one value per block"):
        quantize_affine(x, (1, 64), s, zp, "int4")  # scale is per group of 32, not per row
    with pytest.raises(RuntimeError, match="one value per block"):
        dequantize_affine(q, (1, 32), s[:, :1], zp, "int4")
    with pytest.raises(RuntimeError, match="'float' goes with mapping 'asymmetric' only"):
        choose_qparams_affine(x, (1, 32), "int4", "symmetric", "float")
    with pytest.raises(RuntimeError, match="unknown mapping 'sym'"):
        choose_qparams_affine(x, (1, 32), "int4", "sym")
    with pytest.raises(RuntimeError, match="unknown zero_point_domain 'none'"):
        choose_qparams_affine(x, (1, 32), "int4", "asymmetric", "none")
    with pytest.raises(RuntimeError, match="input dtype"):
        quantize_affine(x.to(torch.int32), (1, 32), s, zp, "int4")
    with pytest.raises(RuntimeError, match="input dtype"):
        choose_qparams_affine(x.to(torch.int8), (1, 32), "int4")
    with pytest.raises(RuntimeError, match="data for qdtype 'uint4' must be"):
        dequantize_affine(q, (1, 32), s, zp, "uint4")  # int8 codes for a uint4 qdtype
    with pytest.raises(RuntimeError, match="data for qdtype 'int4' must be"):
        dequantize_affine(q.to(torch.int32), (1, 32), s, zp, "int4")
    with pytest.raises(RuntimeError, match="scale dtype torch.int32 is not supported"):
        quantize_affine(x, (1, 32), s.to(torch.int32), zp, "int4")
