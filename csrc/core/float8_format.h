// float8 (e4m3fn, e5m2) scaling: amax -> dequantization scale, and the saturating cast.
//
// Convention used everywhere in lowbit: `scale` is the DEquantization scale,
//   data = saturate(x / scale) rounded to fp8 (round-to-nearest-even),   data * scale ~= x,
//   scale = max(amax, kAmaxEps) / max_finite(dtype)   (optionally rounded up to a power of 2).
#pragma once

#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e5m2.h>

#include <math.h>
#include <cstdint>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// Floor for amax, so an all-zero tensor gets a tiny positive scale instead of 0 (0/0 = NaN).
constexpr float kAmaxEps = 1e-12f;
constexpr float kE4M3Max = 448.0f;
constexpr float kE5M2Max = 57344.0f;

// Rounds a positive finite scale up to the next power of two (exact: frexp, not log2).
// A power-of-2 scale makes x / scale exact, and rounding up keeps x / scale within range.
LOWBIT_HD float round_scale_up_to_power_of_2(float s) {
  if (!(s > 0.0f) || !(s <= 3.402823466e38f)) return s;  // not positive, NaN or inf
  int e = 0;
  const float m = frexpf(s, &e);  // s = m * 2^e, m in [0.5, 1)
  return m == 0.5f ? s : ldexpf(1.0f, e);
}

// Dequantization scale for a block whose absolute maximum is `amax`.
LOWBIT_HD float float8_scale_from_amax(float amax, float max_finite, bool power_of_2) {
  const float a = amax > kAmaxEps ? amax : kAmaxEps;  // also maps NaN amax to eps
  const float s = a / max_finite;
  return power_of_2 ? round_scale_up_to_power_of_2(s) : s;
}

// x / scale, clamped to the finite range, then rounded to nearest-even fp8.
// The clamp is what makes the cast saturating: c10's conversion maps overflow to NaN.
template <typename Fp8>
LOWBIT_HD Fp8 cast_scaled_to_float8(float x, float scale, float max_finite) {
  float v = x / scale;
  v = fminf(fmaxf(v, -max_finite), max_finite);
  if (x != x) v = x;  // NaN in, NaN out: only finite input is guaranteed finite output
  return Fp8(v);
}

}  // namespace lowbit::core
