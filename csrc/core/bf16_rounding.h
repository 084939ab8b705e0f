// float32 -> bfloat16 rounding for optimizer updates of bf16 parameters: round to nearest even,
// or stochastic rounding with random bits from a counter-based hash.
//
// Stochastic rounding adds 16 random bits below the bf16 mantissa and truncates, so a value
// rounds up with probability equal to its distance from the lower bf16 neighbour: small
// updates survive on average instead of being rounded away. The bits are a pure function of
// (step, tensor index, element index): no RNG state, identical on CPU and CUDA, and identical
// when a run resumes from a checkpoint (the step count is in the optimizer state).
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// SplitMix64's finalizer: a bijective 64-bit mix with good avalanche.
LOWBIT_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// 16 random bits for element `element` of tensor `tensor_index` at step `step`.
LOWBIT_HD uint32_t stochastic_rounding_bits(int64_t step, int64_t tensor_index, int64_t element) {
  const uint64_t key = splitmix64(static_cast<uint64_t>(step) * 0x100000001B3ull ^ static_cast<uint64_t>(tensor_index));
  return static_cast<uint32_t>(splitmix64(key ^ static_cast<uint64_t>(element)) >> 48);
}

LOWBIT_HD uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof(u));
  return u;
}

// Round to nearest even; NaN stays a (quiet) NaN.
LOWBIT_HD c10::BFloat16 bf16_round_nearest_even(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return c10::BFloat16(static_cast<uint16_t>(0x7FC0), c10::BFloat16::from_bits());
  const uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  return c10::BFloat16(static_cast<uint16_t>(rounded >> 16), c10::BFloat16::from_bits());
}

// Stochastic rounding with 16 random bits `r`; inf and NaN round to nearest instead.
LOWBIT_HD c10::BFloat16 bf16_round_stochastic(float x, uint32_t r) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7F800000u) == 0x7F800000u) return bf16_round_nearest_even(x);
  return c10::BFloat16(static_cast<uint16_t>((u + (r & 0xFFFFu)) >> 16), c10::BFloat16::from_bits());
}

}  // namespace lowbit::core
