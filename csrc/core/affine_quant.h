// Affine (integer) quantization over blocks: the one definition shared by quantize_, QAT's
// fake quantization and serialization.
//
//   qdtype       "int1".."int8" (signed, stored in int8) or "uint1".."uint8" (stored in uint8)
//   block_size   one entry per input dim, each dividing that dim: the input is cut into blocks
//                of that shape, and every block gets one scale and one zero point. Per-tensor is
//                block_size == input.shape, per-row (per-token / per-channel) is (1, ..., K),
//                per-group of G along the last dim is (1, ..., G).
//   mapping      "symmetric": scale = amax / ((qmax - qmin) / 2), zero point at the middle
//                (0 for signed types); "asymmetric": scale = (max' - min') / (qmax - qmin) with
//                min' = min(min, 0), max' = max(max, 0) so that 0.0 is exactly representable.
//   zero point   "int" domain:   q = clamp(rint(x / scale) + zp, qmin, qmax), x' = (q - zp) * scale
//   domain       "float" domain (tinygemm's int4 convention, asymmetric only; the range is the
//                block's own [min, max]): zp is a float, mid = (qmin + qmax + 1) / 2,
//                scale = (max - min) / (qmax - qmin), zp = min + scale * (mid - qmin) (so code
//                qmin dequantizes to min, for signed types too),
//                q = clamp(rint((x - (zp - scale * mid)) / scale), qmin, qmax),
//                x' = (q - mid) * scale + zp
// All arithmetic is float32; rint rounds half to even (as torch.round does).
//
// Non-finite values (README "Non-finite values"): a block's min / max are taken over its FINITE
// elements, so ±inf saturates to the extreme codes instead of stretching the range; a block with
// no finite value gets the qparams of a block of zeros (the eps scale). Integer codes have no NaN,
// so a block holding a NaN carries it in its scale: the scale is NaN and every value dequantized
// from the block is NaN (NaN in, NaN out, never finite garbage). The code of a NaN element, and of
// every element quantized with a NaN scale, is 0.
#pragma once

#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>

#include <math.h>
#include <cstdint>
#include <string>

#include <lowbit/core/float8_format.h>
#include <lowbit/core/host_device.h>

namespace lowbit::core {

struct QuantRange {
  int bits;
  bool is_signed;
  int32_t qmin;
  int32_t qmax;
};

enum class ZeroPointDomain : int { Int = 0, Float = 1 };

// "int4" -> {4, signed, -8, 7}; "uint4" -> {4, unsigned, 0, 15}.
inline QuantRange parse_qdtype(const std::string& name) {
  const bool is_signed = name.rfind("int", 0) == 0;
  const bool is_unsigned = name.rfind("uint", 0) == 0;
  int bits = 0;
  if (is_signed || is_unsigned) {
    const std::string digits = name.substr(is_signed ? 3 : 4);
    if (digits.size() == 1 && digits[0] >= '1' && digits[0] <= '8') bits = digits[0] - '0';
  }
  TORCH_CHECK(bits != 0, "affine quantization: unknown qdtype '", name,
              "'; allowed: int1..int8, uint1..uint8");
  if (is_signed) return {bits, true, -(1 << (bits - 1)), (1 << (bits - 1)) - 1};
  return {bits, false, 0, (1 << bits) - 1};
}

inline bool parse_symmetric(const std::string& mapping) {
  TORCH_CHECK(mapping == "symmetric" || mapping == "asymmetric", "affine quantization: unknown mapping '",
              mapping, "'; allowed: 'symmetric', 'asymmetric'");
  return mapping == "symmetric";
}

inline ZeroPointDomain parse_zero_point_domain(const std::string& domain) {
  TORCH_CHECK(domain == "int" || domain == "float", "affine quantization: unknown zero_point_domain '",
              domain, "'; allowed: 'int', 'float'");
  return domain == "int" ? ZeroPointDomain::Int : ZeroPointDomain::Float;
}

LOWBIT_HD float affine_mid_point(QuantRange r) {
  return static_cast<float>((r.qmin + r.qmax + 1) / 2);
}

// What one element adds to its block's running min and max (the reductions are fminf and
// max_propagating_nan, in any order): a finite x itself; ±inf nothing (the identities +inf for the
// min, -inf for the max); NaN a NaN max, which marks the block. The NaN is a canonical positive
// quiet NaN, so the CUDA kernels' order-preserving uint32 keys sort it above +inf.
LOWBIT_HD float affine_min_term(float x) { return fabsf(x) <= kFloat32Max ? x : INFINITY; }
LOWBIT_HD float affine_max_term(float x) {
  return fabsf(x) <= kFloat32Max ? x : (x == x ? -INFINITY : float_of(0x7fc00000u));
}
LOWBIT_HD float max_propagating_nan(float a, float b) { return a != a ? a : (b != b ? b : fmaxf(a, b)); }

// Scale and zero point of one block from the reductions of affine_min_term / affine_max_term
// over it (mn, mx): mx NaN marks a block with a NaN; mn > mx a block without finite values.
LOWBIT_HD void affine_qparams_from_min_max(float mn, float mx, QuantRange r, bool symmetric,
                                           ZeroPointDomain domain, float eps, float* scale,
                                           float* zero_point) {
  const bool has_nan = mx != mx;
  if (!(mn <= mx)) {  // no finite value (or a NaN): the qparams of a block of zeros
    mn = 0.0f;
    mx = 0.0f;
  }
  const float levels = static_cast<float>(r.qmax - r.qmin);
  float s;
  if (symmetric) {
    const float amax = fmaxf(fabsf(mn), fabsf(mx));
    s = fminf(fmaxf(amax / (levels / 2.0f), eps), kFloat32Max);  // finite even for a huge range
    *zero_point = r.is_signed ? 0.0f : affine_mid_point(r);
  } else if (domain == ZeroPointDomain::Int) {
    const float lo = fminf(mn, 0.0f), hi = fmaxf(mx, 0.0f);
    s = fminf(fmaxf((hi - lo) / levels, eps), kFloat32Max);
    const float zp = static_cast<float>(r.qmin) - rintf(lo / s);
    *zero_point = fminf(fmaxf(zp, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
  } else {
    s = fminf(fmaxf((mx - mn) / levels, eps), kFloat32Max);
    // (mid - qmin), not mid: maps code qmin to mn. Same as tinygemm's mn + scale * mid for
    // unsigned types (qmin = 0); with mid alone, signed types would lose their upper half.
    *zero_point = mn + mul_rn(s, affine_mid_point(r) - static_cast<float>(r.qmin));
  }
  *scale = has_nan ? float_of(0x7fc00000u) : s;
}

// Code of x in its block. NaN (x or the scale) gives code 0; ±inf the extreme codes. Branch-free,
// so CPU loops over it vectorize.
LOWBIT_HD int32_t affine_quantize_value(float x, float scale, float zero_point, QuantRange r,
                                        ZeroPointDomain domain) {
  float q = domain == ZeroPointDomain::Int
                ? rintf(x / scale) + zero_point
                : rintf((x - (zero_point - mul_rn(scale, affine_mid_point(r)))) / scale);
  q = q == q ? q : 0.0f;
  const float lo = static_cast<float>(r.qmin), hi = static_cast<float>(r.qmax);
  q = q < lo ? lo : q;
  q = q > hi ? hi : q;
  return static_cast<int32_t>(q);
}

LOWBIT_HD float affine_dequantize_value(int32_t q, float scale, float zero_point, QuantRange r,
                                        ZeroPointDomain domain) {
  return domain == ZeroPointDomain::Int
             ? (static_cast<float>(q) - zero_point) * scale
             : mul_rn(static_cast<float>(q) - affine_mid_point(r), scale) + zero_point;
}

// The value of a stored code; a code outside [qmin, qmax] (an int8 byte that holds no int4 code)
// has none: NaN. The CPU op rejects such codes with an error; the CUDA kernel, which cannot raise
// without a host sync, writes NaN.
LOWBIT_HD float affine_dequantize_code(int32_t q, float scale, float zero_point, QuantRange r,
                                       ZeroPointDomain domain) {
  const float v = affine_dequantize_value(q, scale, zero_point, r, domain);
  return q < r.qmin || q > r.qmax ? float_of(0x7fc00000u) : v;
}

// The length of the contiguous runs that the blocks of `block_size` cut a row-major tensor of
// shape `sizes` into (block entries 1 on the leading dims, then any entry, then full dims: per
// tensor, per row, per group of the last dim), or 0 when the blocks are not contiguous runs.
inline int64_t contiguous_block_numel(c10::IntArrayRef sizes, c10::IntArrayRef block_size) {
  size_t d = 0;
  while (d < sizes.size() && block_size[d] == 1) ++d;
  int64_t run = 1;
  for (size_t e = d; e < sizes.size(); ++e) {
    if (e > d && block_size[e] != sizes[e]) return 0;
    run *= block_size[e];
  }
  return run;
}

// Maps the linear index of an element of a contiguous tensor to the linear index of its block
// (blocks laid out contiguously in the shape input.shape / block_size).
struct BlockIndexer {
  static constexpr int kMaxDims = 8;
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t block[kMaxDims];
  int64_t block_strides[kMaxDims];

  LOWBIT_HD int64_t block_of(int64_t linear) const {
    int64_t out = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      out += (i / block[d]) * block_strides[d];
    }
    return out;
  }
};

// Checks that block_size fits `sizes` (same rank, each entry a positive divisor) and returns
// the indexer; the number of blocks per dim is sizes[d] / block_size[d].
inline BlockIndexer make_block_indexer(c10::IntArrayRef sizes, c10::IntArrayRef block_size) {
  TORCH_CHECK(block_size.size() == sizes.size(), "affine quantization: block_size ", block_size,
              " must have one entry per input dim (input shape ", sizes, ")");
  TORCH_CHECK(sizes.size() <= static_cast<size_t>(BlockIndexer::kMaxDims),
              "affine quantization: at most ", BlockIndexer::kMaxDims, " dims are supported, got ", sizes.size());
  BlockIndexer ix;
  ix.ndim = static_cast<int>(sizes.size());
  int64_t stride = 1;
  for (int d = ix.ndim - 1; d >= 0; --d) {
    TORCH_CHECK(block_size[d] >= 1 && sizes[d] % block_size[d] == 0, "affine quantization: block_size ",
                block_size, " does not divide input shape ", sizes, " (dim ", d, ": ", block_size[d],
                " must be a positive divisor of ", sizes[d], ")");
    ix.sizes[d] = sizes[d];
    ix.block[d] = block_size[d];
    ix.block_strides[d] = stride;
    stride *= sizes[d] / block_size[d];
  }
  return ix;
}

}  // namespace lowbit::core
