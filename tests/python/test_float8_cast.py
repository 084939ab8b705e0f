"""lowbit.core.cast_to_float8: scale shapes and values, the rounding error bound, saturation.

Error bound (per element; m = mantissa bits: 3 for e4m3fn, 2 for e5m2; s = its scale):
  the kernel computes v = fl32(x / s) (relative error <= 2^-24), clamps v to +-max_finite (only
  moves v by float32 rounding, since |x| <= amax = s * max_finite up to that rounding), and
  rounds v to nearest-even float8. In the normal float8 range that rounding moves v by at most
  half an ulp, <= 2^-(m+1) |v|; in the subnormal range by at most half the subnormal spacing,
  min_subnormal / 2. Multiplying back by s (exact in float64):
      |data * s - x| <= 2^-(m+1) |x| + (min_subnormal / 2) * s + 2^-22 |x|
  where the last term bounds the float32 division and clamp roundings.
"""

import math

import pytest
import torch

from lowbit.core import cast_to_float8

FORMATS = {
    # dtype: (mantissa bits, max finite, min subnormal)
    torch.float8_e4m3fn: (3, 448.0, 2.0**-9),
    torch.float8_e5m2: (2, 57344.0, 2.0**-16),
}
DTYPES = list(FORMATS)
INPUT_DTYPES = [torch.float32, torch.bfloat16, torch.float16]
GRANULARITIES = ["tensor", "row", "column"]


def reduce_dims(x: torch.Tensor, granularity: str):
    return {"tensor": None, "row": -1, "column": -2}[granularity]


def reference_scale(x: torch.Tensor, dtype, granularity: str) -> torch.Tensor:
    """scale = max(amax, 1e-12) / max_finite, in float32 (division correctly rounded)."""
    a = x.float().abs()
    dim = reduce_dims(x, granularity)
    amax = a.amax() if dim is None else a.amax(dim=dim, keepdim=True)
    return amax.clamp_min(1e-12) / FORMATS[dtype][1]


def expected_scale_shape(shape, granularity):
    if granularity == "tensor":
        return ()
    s = list(shape)
    s[-1 if granularity == "row" else -2] = 1
    return tuple(s)


def sample_input(shape, dtype, rng) -> torch.Tensor:
    """Normal values whose magnitude varies by rows and columns (so scales differ), with zeros."""
    x = torch.randn(shape, generator=rng)
    x = x * torch.exp2(torch.randint(-6, 7, shape[:-1] + (1,), generator=rng).float())
    x = x * torch.exp2(torch.randint(-3, 4, (1,) * (len(shape) - 1) + shape[-1:], generator=rng).float())
    x.view(-1)[::5] = 0.0  # a step coprime to the widths, so no row or column is all zero
    return x.to(dtype)


SHAPES = [(16, 48), (3, 5, 7), (2, 2, 4, 8)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("in_dtype", INPUT_DTYPES, ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_scale_and_data_match_the_definition(dtype, in_dtype, granularity, rng):
    mbits, max_finite, min_sub = FORMATS[dtype]
    for shape in SHAPES:
        x = sample_input(shape, in_dtype, rng)
        data, scale = cast_to_float8(x, dtype, granularity)
        assert data.dtype == dtype and data.shape == x.shape
        assert scale.dtype == torch.float32 and tuple(scale.shape) == expected_scale_shape(shape, granularity)
        # scale == max(amax, eps) / max_finite exactly.
        assert torch.equal(scale, reference_scale(x, dtype, granularity))
        # data is exactly the saturating round-to-nearest-even cast of x / scale (torch's own cast).
        xf = x.float()
        expected = (xf / scale).clamp(-max_finite, max_finite).to(dtype)
        assert torch.equal(data.view(torch.uint8), expected.view(torch.uint8))
        # The derived error bound (module docstring), in float64.
        err = (data.double() * scale.double() - xf.double()).abs()
        bound = (2.0 ** -(mbits + 1) + 2.0**-22) * xf.double().abs() + (min_sub / 2) * scale.double()
        assert (err <= bound).all(), (err - bound).max()
        # Each block's largest element lands on +-max_finite (the scale uses the full range).
        dim = reduce_dims(x, granularity)
        dmax = data.float().abs()
        dmax = dmax.amax() if dim is None else dmax.amax(dim=dim)
        assert (dmax == max_finite).all()
        # Low-precision inputs convert exactly to float32 first.
        if in_dtype != torch.float32:
            data32, scale32 = cast_to_float8(xf, dtype, granularity)
            assert torch.equal(scale32, scale)
            assert torch.equal(data32.view(torch.uint8), data.view(torch.uint8))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_power_of_2_scales(dtype, granularity, rng):
    mbits, max_finite, min_sub = FORMATS[dtype]
    x = sample_input((3, 12, 20), torch.float32, rng)
    data, scale = cast_to_float8(x, dtype, granularity, power_of_2_scale=True)
    exact = reference_scale(x, dtype, granularity)
    mantissa, _ = torch.frexp(scale)
    assert (mantissa == 0.5).all()  # powers of two
    assert (scale >= exact).all() and (scale < 2 * exact).all()  # the next power of two up
    expected = (x / scale).clamp(-max_finite, max_finite).to(dtype)
    assert torch.equal(data.view(torch.uint8), expected.view(torch.uint8))
    err = (data.double() * scale.double() - x.double()).abs()
    bound = (2.0 ** -(mbits + 1) + 2.0**-22) * x.double().abs() + (min_sub / 2) * scale.double()
    assert (err <= bound).all()
    # A power-of-2 amax / max_finite is left as it is.
    y = torch.full((4, 4), max_finite * 0.25)
    _, s = cast_to_float8(y, dtype, granularity, power_of_2_scale=True)
    assert (s == 0.25).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("in_dtype", INPUT_DTYPES, ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("pow2", [False, True])
def test_saturating_never_gives_nan_from_finite_input(dtype, in_dtype, granularity, pow2, rng):
    top = torch.finfo(in_dtype).max
    x = torch.randn(6, 10, generator=rng) * 1e-3
    x[0, 0], x[1, 3], x[5, 9] = top, -top, top / 3
    x[2, :] = torch.tensor([1e-30, -1e-38, 1e-45, 0.0, -0.0, 1.0, 65504.0, -65504.0, 1e4, 3.0])
    x = x.to(in_dtype)
    assert torch.isfinite(x).all()
    data, scale = cast_to_float8(x, dtype, granularity, power_of_2_scale=pow2)
    assert torch.isfinite(data.float()).all()
    assert torch.isfinite(scale).all() and (scale > 0).all()
    assert data.float().abs().max().item() <= FORMATS[dtype][1]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_zeros_give_finite_data_and_the_eps_scale(dtype, granularity):
    x = torch.zeros(2, 4, 6)
    data, scale = cast_to_float8(x, dtype, granularity)
    assert (data.float() == 0).all()
    expected = torch.tensor(1e-12, dtype=torch.float32) / FORMATS[dtype][1]
    assert (scale == expected).all() and torch.isfinite(scale).all()


def test_nan_input_gives_nan_only_where_it_was():
    x = torch.randn(4, 8)
    x[1, 2] = float("nan")
    data, _ = cast_to_float8(x, torch.float8_e4m3fn, "row")
    nan = torch.isnan(data.float())
    assert nan[1, 2] and nan.sum() == 1


def test_non_contiguous_and_one_dim_inputs(rng):
    x = torch.randn(12, 20, generator=rng)
    for granularity in GRANULARITIES:
        d1, s1 = cast_to_float8(x.t(), torch.float8_e4m3fn, granularity)
        d2, s2 = cast_to_float8(x.t().contiguous(), torch.float8_e4m3fn, granularity)
        assert torch.equal(s1, s2) and torch.equal(d1.view(torch.uint8), d2.view(torch.uint8))
    v = torch.randn(33, generator=rng)
    data, scale = cast_to_float8(v, torch.float8_e5m2)
    assert data.shape == (33,) and scale.shape == ()
    assert scale.item() == (v.abs().max() / 57344.0).item()


def test_errors():
    x = torch.randn(4, 8)
    for bad in (torch.int32, torch.int8):
        with pytest.raises(RuntimeError, match="input dtype .* is not supported"):
            cast_to_float8(x.to(bad))
    for bad in (torch.float16, torch.int8, torch.float32):
        with pytest.raises(RuntimeError, match="allowed: torch.float8_e4m3fn, torch.float8_e5m2"):
            cast_to_float8(x, bad)
    with pytest.raises(RuntimeError, match="unknown granularity 'block'"):
        cast_to_float8(x, torch.float8_e4m3fn, "block")
    for granularity in ("row", "column"):
        with pytest.raises(RuntimeError, match="needs an input with at least 2 dims"):
            cast_to_float8(torch.randn(8), torch.float8_e4m3fn, granularity)


def test_bound_is_not_vacuous():
    # The bound must be tight enough to catch a wrong rounding: a truncating cast exceeds it.
    x = torch.tensor([1.0 + 2.0**-4 + 2.0**-8, 448.0])  # just above a midpoint of e4m3 near 1
    data, scale = cast_to_float8(x, torch.float8_e4m3fn)
    assert scale.item() == 1.0
    assert data.float()[0].item() == 1.125  # round to nearest, not truncation (1.0)
    assert math.isclose(data.float()[1].item(), 448.0)
