// float8 (e4m3fn, e5m2) scaling: amax -> dequantization scale, and the saturating cast.
//
// Convention used everywhere in lowbit: `scale` is the DEquantization scale,
//   data = saturate(x / scale) rounded to fp8 (round-to-nearest-even),   data * scale ~= x,
//   scale = max(amax, kAmaxEps) / max_finite(dtype)   (optionally rounded up to a power of 2).
//
// Non-finite values (lowbit's one rule, README "Non-finite values"): amax is taken over the
// FINITE elements only, so one inf or NaN never wipes out its block; ±inf then saturates to
// ±max_finite with its sign, and NaN stays NaN (both float8 dtypes have a NaN code). A block with
// no finite value gets the eps scale.
#pragma once

#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e5m2.h>

#include <math.h>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// Floor for amax, so an all-zero tensor gets a tiny positive scale instead of 0 (0/0 = NaN).
constexpr float kAmaxEps = 1e-12f;
constexpr float kE4M3Max = 448.0f;
constexpr float kE5M2Max = 57344.0f;
constexpr float kFloat32Max = 3.402823466e38f;

LOWBIT_HD uint32_t bits_of(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof(u));
  return u;
}

LOWBIT_HD float float_of(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof(x));
  return x;
}

// What one element contributes to its block's amax: |x| when finite, 0 for ±inf and NaN.
LOWBIT_HD float float8_amax_term(float x) {
  const float a = fabsf(x);
  return a <= kFloat32Max ? a : 0.0f;  // false for inf and NaN
}

// Rounds a positive finite scale up to the next power of two (exact: frexp, not log2).
// A power-of-2 scale makes x / scale exact, and rounding up keeps x / scale within range.
LOWBIT_HD float round_scale_up_to_power_of_2(float s) {
  if (!(s > 0.0f) || !(s <= kFloat32Max)) return s;  // not positive, NaN or inf
  int e = 0;
  const float m = frexpf(s, &e);  // s = m * 2^e, m in [0.5, 1)
  return m == 0.5f ? s : ldexpf(1.0f, e);
}

// Dequantization scale for a block whose finite absolute maximum is `amax`.
LOWBIT_HD float float8_scale_from_amax(float amax, float max_finite, bool power_of_2) {
  const float a = amax > kAmaxEps ? amax : kAmaxEps;  // also maps a NaN amax to eps
  const float s = a / max_finite;
  return power_of_2 ? round_scale_up_to_power_of_2(s) : s;
}

// float32 -> float8 bits, round to nearest even: exactly c10's Float8_e4m3fn(float) /
// Float8_e5m2(float) (tests compare them over every exponent and the rounding-relevant mantissa
// bits), written without branches so a CPU loop over it vectorizes. Beyond the largest finite
// value the result is c10's: NaN for e4m3fn, inf (or NaN for NaN input) for e5m2; the saturating
// cast below clamps first, so only NaN gets there.
LOWBIT_HD uint8_t float8_e4m3fn_bits(float f) {
  const uint32_t u = bits_of(f);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u ^ sign;
  // Below 2^-6 (subnormal): adding 2^(141-127) rounds the value to a multiple of 2^-9 in the low bits.
  const uint32_t sub = bits_of(float_of(a) + float_of(141u << 23)) - (141u << 23);
  // Normal: rebias the exponent and round the mantissa to 3 bits, ties to even.
  const uint32_t norm = (a + (static_cast<uint32_t>(7 - 127) << 23) + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
  uint32_t r = a < (121u << 23) ? sub : norm;
  r = a >= (1087u << 20) ? 0x7Fu : r;  // >= 480 (rounds past 448), inf, NaN: the NaN code
  return static_cast<uint8_t>(r | (sign >> 24));
}

LOWBIT_HD uint8_t float8_e5m2_bits(float f) {
  const uint32_t u = bits_of(f);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u ^ sign;
  const uint32_t sub = bits_of(float_of(a) + float_of(134u << 23)) - (134u << 23);  // below 2^-14
  const uint32_t norm = (a + (static_cast<uint32_t>(15 - 127) << 23) + 0xFFFFFu + ((a >> 21) & 1u)) >> 21;
  uint32_t r = a < (113u << 23) ? sub : norm;
  r = a >= (143u << 23) ? (a > (255u << 23) ? 0x7Fu : 0x7Cu) : r;  // >= 65536: inf; NaN: NaN
  return static_cast<uint8_t>(r | (sign >> 24));
}

// x / scale clamped to the finite range: what the saturating cast rounds to fp8. The clamp is
// what saturates (±inf -> ±max_finite): c10's conversion maps overflow to NaN. NaN is passed
// through (compares with NaN are false). Selects, not fminf / fmaxf, so CPU loops vectorize it.
LOWBIT_HD float float8_scaled_value(float x, float scale, float max_finite) {
  float v = x / scale;
  v = v < -max_finite ? -max_finite : v;
  v = v > max_finite ? max_finite : v;
  return x == x ? v : x;
}

template <typename Fp8>
LOWBIT_HD Fp8 cast_scaled_to_float8(float x, float scale, float max_finite) {
  const float v = float8_scaled_value(x, scale, max_finite);
  if constexpr (std::is_same_v<Fp8, c10::Float8_e4m3fn>) {
    return Fp8(float8_e4m3fn_bits(v), Fp8::from_bits());
  } else {
    return Fp8(float8_e5m2_bits(v), Fp8::from_bits());
  }
}

}  // namespace lowbit::core
