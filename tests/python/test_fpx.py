"""lowbit.core.fpx_encode / fpx_decode against an independent definition of fpX_eAwB.

The reference here is written from the format's definition only (exact fractions for decode,
nearest table value for encode), never from lowbit's code:
  bias = 2^(ebits-1) - 1; exponent field 0: m / 2^mbits * 2^(1-bias) (subnormal);
  otherwise (1 + m / 2^mbits) * 2^(e-bias); no inf or NaN codes.
  encode: nearest value, ties to the even code (= even mantissa), saturating at the largest
  magnitude (inf too), the sign bit always kept (-0.0 has a code); NaN has no code and encodes
  as code 0 (+0.0), lowbit's documented choice (a scaled fpX weight carries NaN in its scale).
"""

from fractions import Fraction

import numpy as np
import pytest
import torch

import lowbit
from lowbit.core import fpx_decode, fpx_encode

# Every valid format except e4m3 and e5m2 (torch's own float8 dtypes): 26 formats.
FORMATS = [
    (e, m)
    for e in range(1, 8)
    for m in range(0, 8)
    if 1 + e + m <= 8 and (e, m) not in {(4, 3), (5, 2)}
]


def fmt_id(f):
    return f"e{f[0]}m{f[1]}"


def reference_value(code: int, ebits: int, mbits: int) -> float:
    """The exact value of one code, from the format definition (Fraction, then float)."""
    nbits = ebits + mbits
    negative = (code >> nbits) & 1
    e = (code >> mbits) & ((1 << ebits) - 1)
    m = code & ((1 << mbits) - 1)
    bias = 2 ** (ebits - 1) - 1
    if e == 0:
        v = Fraction(m, 2**mbits) * Fraction(2) ** (1 - bias)
    else:
        v = (1 + Fraction(m, 2**mbits)) * Fraction(2) ** (e - bias)
    f = float(v)  # exact: at most 8 significant bits, exponents well inside float32's range
    return -f if negative else f  # -0.0 for the negative zero code


def magnitude_table(ebits: int, mbits: int) -> np.ndarray:
    """Non-negative values indexed by magnitude code; strictly increasing."""
    table = np.array([reference_value(c, ebits, mbits) for c in range(1 << (ebits + mbits))], dtype=np.float64)
    assert np.all(np.diff(table) > 0)
    return table


def reference_encode(x: np.ndarray, ebits: int, mbits: int) -> np.ndarray:
    """Nearest table value, ties to the even code, saturating; sign bit kept; NaN -> code 0."""
    table = magnitude_table(ebits, mbits)
    nbits = ebits + mbits
    a = np.abs(x.astype(np.float64))
    nan = np.isnan(a)
    a = np.where(nan, 0.0, a)
    hi = np.minimum(np.searchsorted(table, a, side="left"), len(table) - 1)
    lo = np.maximum(hi - 1, 0)
    # Differences of neighbours in one binade are exact in float64 (Sterbenz), so ties are exact.
    d_lo = a - table[lo]
    d_hi = table[hi] - a
    code = np.where(d_lo < d_hi, lo, hi)
    tie = (d_lo == d_hi) & (lo != hi)
    code = np.where(tie, np.where(lo % 2 == 0, lo, hi), code)
    code = np.where(a >= table[-1], len(table) - 1, code)  # saturate (inf included)
    sign = np.where(nan, 0, np.signbit(x)).astype(np.int64)
    return (code + (sign << nbits)).astype(np.uint8)


def as_f32(values) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float32))


@pytest.mark.parametrize("fmt", FORMATS, ids=fmt_id)
def test_decode_table_is_exhaustively_exact(fmt):
    ebits, mbits = fmt
    codes = torch.arange(1 << (1 + ebits + mbits), dtype=torch.int32).to(torch.uint8)
    got = fpx_decode(codes, ebits, mbits)
    assert got.dtype == torch.float32 and got.shape == codes.shape
    expected = torch.tensor([reference_value(int(c), ebits, mbits) for c in codes], dtype=torch.float64)
    assert torch.equal(got.double(), expected)
    assert torch.equal(torch.signbit(got), torch.signbit(expected))  # the -0.0 code decodes to -0.0
    assert torch.isfinite(got).all()  # no inf / NaN codes
    # Largest finite magnitude is the all-ones magnitude code.
    bias = 2 ** (ebits - 1) - 1
    max_value = (2 - 2.0**-mbits) * 2.0 ** ((1 << ebits) - 1 - bias)
    assert got.abs().max().item() == max_value


@pytest.mark.parametrize("fmt", FORMATS, ids=fmt_id)
def test_encode_inverts_decode_for_every_code(fmt):
    ebits, mbits = fmt
    codes = torch.arange(1 << (1 + ebits + mbits), dtype=torch.int32).to(torch.uint8)
    assert torch.equal(fpx_encode(fpx_decode(codes, ebits, mbits), ebits, mbits), codes)


@pytest.mark.parametrize("fmt", FORMATS, ids=fmt_id)
def test_encode_matches_nearest_value_on_random_inputs(fmt, rng):
    ebits, mbits = fmt
    table = magnitude_table(ebits, mbits)
    smallest, largest = table[1], table[-1]
    n = 4000
    log_mag = torch.empty(n, dtype=torch.float64).uniform_(np.log2(smallest) - 4, np.log2(largest) + 2, generator=rng)
    log_uniform = torch.exp2(log_mag)
    uniform = torch.empty(n, dtype=torch.float64).uniform_(0, 1.25 * largest, generator=rng)
    subnormal = torch.empty(n // 4, dtype=torch.float64).uniform_(0, table[1 << mbits], generator=rng)
    # Arbitrary float32 bit patterns: huge, tiny, float32 subnormals, inf and NaN.
    bits = torch.randint(-(2**31), 2**31 - 1, (n // 4,), dtype=torch.int64, generator=rng).to(torch.int32)
    patterns = bits.view(torch.float32).double()
    x = torch.cat([log_uniform, uniform, subnormal, patterns]).float()
    signs = torch.randint(0, 2, x.shape, generator=rng) * 2 - 1
    x = x * signs
    got = fpx_encode(x, ebits, mbits)
    expected = torch.from_numpy(reference_encode(x.numpy(), ebits, mbits))
    assert torch.equal(got, expected)


@pytest.mark.parametrize("fmt", FORMATS, ids=fmt_id)
def test_encode_ties_go_to_the_even_code(fmt):
    ebits, mbits = fmt
    table = magnitude_table(ebits, mbits)
    nbits = ebits + mbits
    lo = np.arange(len(table) - 1)
    mid = (table[:-1] + table[1:]) / 2  # exact in float32: one bit more than the format has
    assert np.array_equal(mid.astype(np.float32).astype(np.float64), mid)
    even = np.where(lo % 2 == 0, lo, lo + 1).astype(np.uint8)
    got_pos = fpx_encode(as_f32(mid), ebits, mbits).numpy()
    got_neg = fpx_encode(as_f32(-mid), ebits, mbits).numpy()
    assert np.array_equal(got_pos, even)
    assert np.array_equal(got_neg, even | (1 << nbits))
    # One float32 ulp either side of a tie is no tie: it goes to the nearer neighbour.
    mid32 = mid.astype(np.float32)
    below = np.nextafter(mid32, np.float32(0))
    above = np.nextafter(mid32, np.float32(np.inf))
    assert np.array_equal(fpx_encode(torch.from_numpy(below), ebits, mbits).numpy(), lo.astype(np.uint8))
    assert np.array_equal(fpx_encode(torch.from_numpy(above), ebits, mbits).numpy(), (lo + 1).astype(np.uint8))


@pytest.mark.parametrize("fmt", FORMATS, ids=fmt_id)
def test_encode_saturates_and_keeps_the_sign(fmt):
    ebits, mbits = fmt
    nbits = ebits + mbits
    table = magnitude_table(ebits, mbits)
    max_code = (1 << nbits) - 1
    big = as_f32([table[-1], table[-1] * 1.5, table[-1] * 4, 1e30, 3.4028235e38, np.inf])
    assert torch.equal(fpx_encode(big, ebits, mbits), torch.full(big.shape, max_code, dtype=torch.uint8))
    assert torch.equal(fpx_encode(-big, ebits, mbits), torch.full(big.shape, max_code | (1 << nbits), dtype=torch.uint8))
    # NaN has no code: code 0 (+0.0) whatever its sign bit.
    nan = torch.tensor([float("nan"), -float("nan")])
    assert fpx_encode(nan, ebits, mbits).tolist() == [0, 0]
    # Negative zero and negative values that round to zero keep the sign bit.
    zeros = as_f32([0.0, -0.0, table[1] / 4, -table[1] / 4, -1e-40])
    codes = fpx_encode(zeros, ebits, mbits)
    assert codes.tolist() == [0, 1 << nbits, 0, 1 << nbits, 1 << nbits]
    back = fpx_decode(codes, ebits, mbits)
    assert torch.equal(torch.signbit(back), torch.tensor([False, True, False, True, True]))
    assert (back == 0).all()


@pytest.mark.parametrize("fmt", [(3, 2), (2, 3), (2, 1), (1, 2)], ids=fmt_id)
def test_low_precision_inputs_and_outputs(fmt, rng):
    ebits, mbits = fmt
    x = torch.randn(6, 40, generator=rng) * 4
    for dtype in (torch.bfloat16, torch.float16):
        xl = x.to(dtype)
        codes = fpx_encode(xl, ebits, mbits)
        assert codes.shape == x.shape and codes.dtype == torch.uint8
        assert torch.equal(codes, fpx_encode(xl.float(), ebits, mbits))  # the conversion is exact
        decoded = fpx_decode(codes, ebits, mbits, dtype)
        assert decoded.dtype == dtype
        assert torch.equal(decoded, fpx_decode(codes, ebits, mbits).to(dtype))
    # Non-contiguous input: same codes as its contiguous copy.
    xt = x.t()
    assert torch.equal(fpx_encode(xt, ebits, mbits), fpx_encode(xt.contiguous(), ebits, mbits))


def test_fp6_e3m2_known_values():
    # Hand-checked: bias 3; 0x1F = 0b0_111_11 = 1.75 * 2^4 = 28 (max); 0x01 = 0.25 * 2^-2 = 1/16;
    # 0x04 = 1.0 * 2^-2; 0x0C = 0b0_011_00 = 1.0; 0x2C = -1.0.
    codes = torch.tensor([0x1F, 0x01, 0x04, 0x0C, 0x2C, 0x20], dtype=torch.uint8)
    assert fpx_decode(codes, 3, 2).tolist() == [28.0, 1 / 16, 0.25, 1.0, -1.0, -0.0]
    # 1.125 is halfway between 1.0 (0x0C, even) and 1.25 (0x0D): ties to even.
    # 1.375 is halfway between 1.25 (0x0D) and 1.5 (0x0E, even).
    x = torch.tensor([1.125, 1.375, 29.0, 100.0, 1 / 32, 3 / 32])
    assert fpx_encode(x, 3, 2).tolist() == [0x0C, 0x0E, 0x1F, 0x1F, 0x00, 0x02]


@pytest.mark.parametrize("ebits,mbits", [(0, 3), (-1, 2), (2, -1), (4, 4), (7, 1), (8, 0), (1, 7), (3, 5)])
def test_invalid_formats_are_rejected(ebits, mbits):
    with pytest.raises(RuntimeError, match="is not a valid format"):
        fpx_encode(torch.zeros(4), ebits, mbits)
    with pytest.raises(RuntimeError, match="is not a valid format"):
        fpx_decode(torch.zeros(4, dtype=torch.uint8), ebits, mbits)


@pytest.mark.parametrize("ebits,mbits", [(4, 3), (5, 2)])
def test_torch_native_float8_formats_are_rejected(ebits, mbits):
    with pytest.raises(RuntimeError, match="torch-native float8"):
        fpx_encode(torch.zeros(4), ebits, mbits)
    with pytest.raises(RuntimeError, match="torch-native float8"):
        fpx_decode(torch.zeros(4, dtype=torch.uint8), ebits, mbits)


def test_bad_dtypes_are_rejected():
    with pytest.raises(RuntimeError, match="fpx_encode: input dtype"):
        fpx_encode(torch.zeros(4, dtype=torch.int32), 3, 2)
    with pytest.raises(RuntimeError, match="fpx_encode: input dtype"):
        fpx_encode(torch.zeros(4, dtype=torch.uint8), 3, 2)
    for dtype in (torch.int8, torch.int32, torch.float32):
        with pytest.raises(RuntimeError, match="codes dtype torch.* is not supported; allowed: torch.uint8"):
            fpx_decode(torch.zeros(4, dtype=dtype), 3, 2)
    with pytest.raises(RuntimeError, match="output dtype"):
        fpx_decode(torch.zeros(4, dtype=torch.uint8), 3, 2, torch.int32)


def test_decode_rejects_codes_wider_than_the_format():
    with pytest.raises(RuntimeError, match="does not fit"):
        fpx_decode(torch.tensor([0, 64], dtype=torch.uint8), 3, 2)  # fp6: 64 needs 7 bits


def test_ops_are_registered():
    assert hasattr(torch.ops.lowbit, "fpx_encode") and hasattr(torch.ops.lowbit, "fpx_decode")
    assert lowbit.core.fpx_encode is fpx_encode
