"""lowbit's one semantics for non-finite values (README "Non-finite values"), on every cast,
quantizer and the kernels built on them, on the CPU and (marked, skipped without one) the GPU.

  scales   come from the FINITE values of their block (amax / min / max skip ±inf and NaN);
           a block without a finite value gets the eps scale (the qparams of a block of zeros)
  ±inf     saturates to ± the format's largest finite value (float8 ±448 / ±57344, fpX ±max,
           intN / uintN the extreme codes), sign kept
  NaN      float8: stays NaN. fpX, intN, uintN have no NaN code: fpx_encode writes code 0; an
           affine block holding a NaN gets a NaN scale, so everything dequantized from it is NaN
           (and its codes are 0)
"""

import pytest
import torch

import lowbit
from lowbit.core import (
    cast_to_float8,
    choose_qparams_affine,
    dequantize_affine,
    fpx_decode,
    fpx_encode,
    quantize_affine,
)

INF, NAN = float("inf"), float("nan")
FP8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e5m2: 57344.0}
GRANULARITIES = ["tensor", "row", "column"]
SCHEMES = [("symmetric", "int"), ("asymmetric", "int"), ("asymmetric", "float")]
ops = torch.ops.lowbit

_cuda_ok = torch.cuda.is_available() and lowbit.build_info()["cuda"]
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not _cuda_ok, reason="needs CUDA")])]


def with_non_finite(shape, rng, device):
    """Random finite values with +inf, -inf and NaN at fixed places (rows 0, 1, 2)."""
    x = torch.randn(shape, generator=rng)
    x[0, 1], x[1, 2], x[2, 3] = INF, -INF, NAN
    return x.to(device)


# ---- float8 --------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(FP8_MAX), ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("pow2", [False, True])
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_float8_inf_saturates_with_its_sign_and_nan_stays_nan(device, dtype, granularity, pow2, in_dtype, rng):
    x = with_non_finite((6, 16), rng, device).to(in_dtype)
    data, scale = cast_to_float8(x, dtype, granularity, power_of_2_scale=pow2)
    d = data.float().cpu()
    top = FP8_MAX[dtype]
    assert d[0, 1] == top and d[1, 2] == -top  # today: +inf -> -448 (inf / inf = NaN, clamped to -max)
    assert torch.isnan(d[2, 3]) and torch.isnan(d).sum() == 1
    # The scales are those of the same tensor with the non-finite values zeroed: the finite amax.
    finite = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
    data_f, scale_f = cast_to_float8(finite, dtype, granularity, power_of_2_scale=pow2)
    assert torch.equal(scale, scale_f)
    keep = torch.isfinite(x).cpu()
    assert torch.equal(data.view(torch.uint8).cpu()[keep], data_f.view(torch.uint8).cpu()[keep])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_float8_block_without_finite_values_gets_the_eps_scale(device, granularity):
    x = torch.tensor([[INF, -INF], [NAN, INF]], device=device)
    data, scale = cast_to_float8(x, torch.float8_e4m3fn, granularity)
    eps_scale = torch.tensor(1e-12) / 448.0
    assert (scale.cpu() == eps_scale).all()
    d = data.float().cpu()
    assert d[0, 0] == 448 and d[0, 1] == -448 and d[1, 1] == 448 and torch.isnan(d[1, 0])


# ---- fpX -----------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ebits,mbits", [(3, 2), (2, 3), (2, 1), (1, 2), (5, 1)])
def test_fpx_inf_saturates_and_nan_is_code_zero(device, ebits, mbits):
    x = torch.tensor([INF, -INF, NAN, -NAN, 1.0], device=device)
    codes = fpx_encode(x, ebits, mbits).cpu()
    nbits = ebits + mbits
    max_code = (1 << nbits) - 1
    assert codes[:4].tolist() == [max_code, max_code | (1 << nbits), 0, 0]  # today: NaN -> max_code
    back = fpx_decode(codes, ebits, mbits)
    assert back[2] == 0 and not torch.signbit(back[2])


# ---- affine --------------------------------------------------------------------------------
def expected_qparams_without(x, block, qdtype, mapping, domain):
    """qparams of x with the non-finite entries replaced by a finite value of their own row
    (one block per row here), which leaves the finite min / max unchanged."""
    rows = []
    for r in range(x.shape[0]):
        row = x[r].clone()
        fin = row[torch.isfinite(row)]
        row[~torch.isfinite(row)] = fin[0] if fin.numel() else 0.0
        rows.append(row)
    return choose_qparams_affine(torch.stack(rows), block, qdtype, mapping, domain)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mapping,domain", SCHEMES)
@pytest.mark.parametrize("qdtype", ["int8", "int4", "uint4", "uint8"])
def test_affine_nan_poisons_its_block_and_inf_saturates(device, mapping, domain, qdtype, rng):
    x = with_non_finite((5, 32), rng, device)
    block = [1, 32]
    scale, zp = choose_qparams_affine(x, block, qdtype, mapping, domain)
    s = scale.cpu().reshape(-1)
    assert torch.isnan(s[2]) and torch.isfinite(s[[0, 1, 3, 4]]).all()  # today: the NaN row gets a finite scale
    exp_scale, exp_zp = expected_qparams_without(x.cpu(), block, qdtype, mapping, domain)
    keep = torch.tensor([0, 1, 3, 4])
    assert torch.equal(s[keep], exp_scale.reshape(-1)[keep])  # inf does not stretch the range
    assert torch.equal(zp.cpu().reshape(-1)[keep], exp_zp.reshape(-1)[keep])
    q = quantize_affine(x, block, scale, zp, qdtype, domain).cpu()
    lo, hi = (0, 2 ** int(qdtype[4:]) - 1) if qdtype.startswith("u") else (-(2 ** (int(qdtype[3:]) - 1)), 2 ** (int(qdtype[3:]) - 1) - 1)
    assert q[0, 1] == hi and q[1, 2] == lo  # ±inf: the extreme codes
    assert (q[2] == 0).all()  # codes under a NaN scale are 0
    deq = dequantize_affine(q.to(device), block, scale, zp, qdtype, domain).cpu()
    assert torch.isnan(deq[2]).all()  # NaN in, NaN out for the whole block
    assert torch.isfinite(deq[[0, 1, 3, 4]]).all()
    assert deq[0, 1] == deq[0].max() and deq[1, 2] == deq[1].min()


@pytest.mark.parametrize("device", DEVICES)
def test_affine_nan_with_a_given_finite_scale_is_code_zero(device):
    x = torch.tensor([[NAN, 1.0, INF, -INF]], device=device)
    scale = torch.tensor([[0.5]], device=device)
    zp = torch.tensor([[3]], dtype=torch.int32, device=device)
    q = quantize_affine(x, [1, 4], scale, zp, "int8").cpu()
    assert q.tolist() == [[0, 5, 127, -128]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mapping,domain", SCHEMES)
def test_affine_block_without_finite_values_gets_the_zero_block_qparams(device, mapping, domain):
    x = torch.tensor([[INF, -INF, INF, INF], [0.0, 0.0, 0.0, 0.0]], device=device)
    scale, zp = choose_qparams_affine(x, [1, 4], "uint4", mapping, domain)
    assert torch.equal(scale[0], scale[1]) and torch.equal(zp[0], zp[1])
    q = quantize_affine(x, [1, 4], scale, zp, "uint4", domain).cpu()
    assert q[0].tolist() == [15, 0, 15, 15]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mapping,domain", SCHEMES)
def test_fake_quantize_nan_in_nan_out_inf_saturates(device, mapping, domain, rng):
    x = with_non_finite((4, 64), rng, device).requires_grad_(True)
    y = ops.fake_quantize_affine(x, [1, 16], "int4" if domain == "int" else "uint4", mapping, domain)
    yc = y.detach().cpu()
    assert torch.isnan(yc[2, :16]).all() and torch.isfinite(yc[2, 16:]).all()  # only the NaN's group
    assert torch.isfinite(yc[[0, 1, 3]]).all()
    assert yc[0, 1] == yc[0, :16].max() and yc[1, 2] == yc[1, :16].min()
    y.sum().backward()
    assert torch.equal(x.grad.cpu(), torch.ones(4, 64))  # straight-through, whatever the values


# ---- the kernels built on the casts and quantizers -----------------------------------------
def int8_weight(n, k, rng, device):
    w = torch.randn(n, k, generator=rng).to(device)
    s, zp = choose_qparams_affine(w, [1, k], "int8", "symmetric")
    return quantize_affine(w, [1, k], s, zp, "int8"), s.reshape(n)


@pytest.mark.parametrize("device", DEVICES)
def test_int8_dynamic_linear_nan_row_is_nan_and_inf_saturates(device, rng):
    w, ws = int8_weight(24, 64, rng, device)
    x = torch.randn(4, 64, generator=rng).to(device)
    x[1, 5] = NAN
    x[2, 7] = INF
    y = ops.int8_dynamic_activation_int8_linear(x, w, ws).cpu()
    assert torch.isnan(y[1]).all()  # today: finite garbage
    assert torch.isfinite(y[[0, 2, 3]]).all()
    # +inf quantizes exactly like the row's largest finite magnitude with a plus sign.
    x_sat = x.clone()
    x_sat[2, 7] = x[2][torch.isfinite(x[2])].abs().max()
    x_sat[1, 5] = 0.0
    y_sat = ops.int8_dynamic_activation_int8_linear(x_sat, w, ws).cpu()
    assert torch.equal(y[[0, 2, 3]], y_sat[[0, 2, 3]])


@pytest.mark.parametrize("device", DEVICES)
def test_int8_dynamic_int4_linear_nan_row_is_nan(device, rng):
    n, k, g = 16, 64, 32
    w = torch.randn(n, k, generator=rng).to(device)
    s, zp = choose_qparams_affine(w, [1, g], "uint4", "symmetric")
    codes = quantize_affine(w, [1, g], s, zp, "uint4")
    packed = lowbit.core.pack_uintx(codes.reshape(-1), 4).reshape(n, k // 2)
    x = torch.randn(3, k, generator=rng).to(device)
    x[0, 3] = NAN
    x[1, 4] = -INF
    y = ops.int8_dynamic_activation_int4_linear(x, packed, s, zp, g).cpu()
    assert torch.isnan(y[0]).all() and torch.isfinite(y[1:]).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("granularity", ["tensor", "row"])
def test_float8_dynamic_linear_keeps_the_sign_of_inf(device, granularity, rng):
    w = torch.randn(8, 32, generator=rng).to(device)
    wq, wscale = cast_to_float8(w, torch.float8_e4m3fn, granularity)
    x = torch.randn(4, 32, generator=rng).to(device)
    x[0, 0] = INF
    x[3, 1] = NAN
    y = ops.float8_dynamic_activation_linear(x, wq, wscale, granularity).float().cpu()
    assert torch.isnan(y[3]).all() and torch.isfinite(y[:3]).all()
    # +inf casts to +448 with the block's finite scale: the same as the block's largest finite
    # magnitude with a plus sign (today it becomes -448, flipping the sign of its contribution).
    x_sat = x.clone()
    x_sat[3, 1] = 0.0
    fin = x[torch.isfinite(x)] if granularity == "tensor" else x[0][torch.isfinite(x[0])]
    x_sat[0, 0] = fin.abs().max()
    y_sat = ops.float8_dynamic_activation_linear(x_sat, wq, wscale, granularity).float().cpu()
    rows = [0] if granularity == "tensor" else [0, 1, 2]
    assert torch.equal(y[rows], y_sat[rows])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise", "rowwise_with_gw_hp"])
def test_float8_training_forward_keeps_the_sign_of_inf(device, recipe, rng):
    w = torch.randn(8, 32, generator=rng).to(device)
    x = torch.randn(4, 32, generator=rng).to(device)
    x[1, 2] = INF
    y = ops.float8_linear(x, w, None, recipe, True).cpu()
    assert torch.isfinite(y).all()
    x_sat = x.clone()
    x_sat[1, 2] = x[torch.isfinite(x)].abs().max() if recipe == "tensorwise" else x[1][torch.isfinite(x[1])].abs().max()
    y_sat = ops.float8_linear(x_sat, w, None, recipe, True).cpu()
    assert torch.equal(y, y_sat)
