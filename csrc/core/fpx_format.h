// fpX_eAwB: sub-byte floating point with 1 sign bit, `ebits` exponent bits, `mbits` mantissa
// bits, one code per byte in the low 1+ebits+mbits bits (sign highest).
//
// Semantics (the ones FP6-LLM and the OCP MX element types use):
//   bias = 2^(ebits-1) - 1; exponent field 0 is subnormal: m * 2^(1-bias-mbits);
//   otherwise (2^mbits + m) * 2^(e-bias-mbits). No inf or NaN codes: the top exponent is finite.
// Encoding rounds to nearest, ties to even, and saturates at the largest finite magnitude:
// ±inf encodes as ±max. NaN has no code: it encodes as code 0 (+0.0). A scaled fpX weight
// carries NaN in its float32 scale instead (README "Non-finite values").
#pragma once

#include <c10/util/Exception.h>

#include <math.h>
#include <cstdint>
#include <cstring>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// The torch-native float8s keep their own (inf/NaN-carrying) semantics and are not fpX formats.
inline void check_fpx_format(int64_t ebits, int64_t mbits) {
  TORCH_CHECK(ebits >= 1 && mbits >= 0 && 1 + ebits + mbits <= 8,
              "fpx: ebits=", ebits, ", mbits=", mbits, " is not a valid format; allowed: ebits >= 1, "
              "mbits >= 0, 1 + ebits + mbits <= 8");
  TORCH_CHECK(!(ebits == 4 && mbits == 3) && !(ebits == 5 && mbits == 2),
              "fpx: e", ebits, "m", mbits, " is a torch-native float8; use lowbit.core.cast_to_float8 "
              "(torch.float8_e4m3fn / torch.float8_e5m2) instead");
}

LOWBIT_HD int fpx_bias(int ebits) { return (1 << (ebits - 1)) - 1; }

// Largest finite magnitude of the format.
LOWBIT_HD float fpx_max_finite(int ebits, int mbits) {
  const int top_exponent = (1 << ebits) - 1;
  return ldexpf(static_cast<float>((2 << mbits) - 1), top_exponent - fpx_bias(ebits) - mbits);
}

LOWBIT_HD float fpx_decode_value(uint8_t code, int ebits, int mbits) {
  const int nbits = ebits + mbits;
  const uint32_t magnitude = code & ((1u << nbits) - 1u);
  const bool negative = (code >> nbits) & 1u;
  const int e = static_cast<int>(magnitude >> mbits);
  const int m = static_cast<int>(magnitude & ((1u << mbits) - 1u));
  const int bias = fpx_bias(ebits);
  const float v = e == 0 ? ldexpf(static_cast<float>(m), 1 - bias - mbits)
                         : ldexpf(static_cast<float>((1 << mbits) + m), e - bias - mbits);
  return negative ? -v : v;
}

// Written without branches (both roundings computed, one selected) so CPU loops vectorize it.
LOWBIT_HD uint8_t fpx_encode_value(float x, int ebits, int mbits) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof(bits));
  const uint32_t abs_bits = bits & 0x7fffffffu;
  const bool is_nan = abs_bits > 0x7f800000u;
  const uint32_t sign = is_nan ? 0u : bits >> 31;
  float a;
  memcpy(&a, &abs_bits, sizeof(a));

  const int nbits = ebits + mbits;
  const uint32_t max_code = (1u << nbits) - 1u;
  const int bias = fpx_bias(ebits);
  // Subnormal range (a < 2^(1-bias)): the code is a / 2^(1-bias-mbits) rounded half to even.
  // The scaling by a power of 2 is exact, and adding 2^23 rounds to an integer in the low
  // mantissa bits (the scaled value is below 2^mbits <= 2^7); 2^mbits is the smallest normal.
  const uint32_t pow_bits = static_cast<uint32_t>(127 + bias - 1 + mbits) << 23;  // 2^(bias-1+mbits)
  float pow2;
  memcpy(&pow2, &pow_bits, sizeof(pow2));
  float shifted = a * pow2 + 8388608.0f;
  uint32_t shifted_bits;
  memcpy(&shifted_bits, &shifted, sizeof(shifted_bits));
  const uint32_t sub = shifted_bits - 0x4B000000u;
  // Normal range: round the float32 mantissa to mbits, ties to even, on the bit pattern; a carry
  // out of the mantissa correctly bumps the exponent; inf and overflow saturate at max_code.
  const int shift = 23 - mbits;
  const uint32_t rounded = (abs_bits + ((1u << (shift - 1)) - 1u) + ((abs_bits >> shift) & 1u)) >> shift;
  uint32_t norm = rounded - (static_cast<uint32_t>(127 - bias) << mbits);
  norm = norm > max_code ? max_code : norm;
  const uint32_t min_normal_bits = static_cast<uint32_t>(127 + 1 - bias) << 23;  // 2^(1-bias)
  uint32_t code = abs_bits < min_normal_bits ? sub : norm;
  code = is_nan ? 0u : code;
  return static_cast<uint8_t>((sign << nbits) | code);
}

}  // namespace lowbit::core
