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
#pragma once

#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>

#include <math.h>
#include <cstdint>
#include <string>

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

// Scale and zero point of one block from its min and max.
LOWBIT_HD void affine_qparams_from_min_max(float mn, float mx, QuantRange r, bool symmetric,
                                           ZeroPointDomain domain, float eps, float* scale,
                                           float* zero_point) {
  const float levels = static_cast<float>(r.qmax - r.qmin);
  if (symmetric) {
    const float amax = fmaxf(fabsf(mn), fabsf(mx));
    *scale = fmaxf(amax / (levels / 2.0f), eps);
    *zero_point = r.is_signed ? 0.0f : affine_mid_point(r);
  } else if (domain == ZeroPointDomain::Int) {
    const float lo = fminf(mn, 0.0f), hi = fmaxf(mx, 0.0f);
    *scale = fmaxf((hi - lo) / levels, eps);
    const float zp = static_cast<float>(r.qmin) - rintf(lo / *scale);
    *zero_point = fminf(fmaxf(zp, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
  } else {
    *scale = fmaxf((mx - mn) / levels, eps);
    // (mid - qmin), not mid: maps code qmin to mn. Same as tinygemm's mn + scale * mid for
    // unsigned types (qmin = 0); with mid alone, signed types would lose their upper half.
    *zero_point = mn + mul_rn(*scale, affine_mid_point(r) - static_cast<float>(r.qmin));
  }
}

LOWBIT_HD int32_t affine_quantize_value(float x, float scale, float zero_point, QuantRange r,
                                        ZeroPointDomain domain) {
  float q = domain == ZeroPointDomain::Int
                ? rintf(x / scale) + zero_point
                : rintf((x - (zero_point - mul_rn(scale, affine_mid_point(r)))) / scale);
  q = fminf(fmaxf(q, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));  // NaN -> qmin
  return static_cast<int32_t>(q);
}

LOWBIT_HD float affine_dequantize_value(int32_t q, float scale, float zero_point, QuantRange r,
                                        ZeroPointDomain domain) {
  return domain == ZeroPointDomain::Int
             ? (static_cast<float>(q) - zero_point) * scale
             : mul_rn(static_cast<float>(q) - affine_mid_point(r), scale) + zero_point;
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
