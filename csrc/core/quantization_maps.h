// Quantization maps of the low-bit optimizer states, and the nearest-entry search that the CPU
// and CUDA kernels share.
//
// A map is an ascending table of 2^bits values in [-1, 1] (signed) or [0, 1] (unsigned); a value
// x normalized by its scale (x / scale) is stored as the index of the nearest entry.
//
// Dynamic tree ("dynamic exponent") map, as in bitsandbytes and torchao (Dettmers, 2016): a code
// is a sign bit (signed maps only), then E zero bits that choose the decade 10^-E, an indicator 1
// bit, and F linear fraction bits. With m magnitude bits (bits - 1 signed, bits unsigned) there
// are bits - 1 decades, E = 0 .. bits - 2, and decade E has F = m - 1 - E fraction bits, whose
// 2^F values are the midpoints of 2^F equal bins of [0.1, 1]:
//     value(E, f) = 10^-E * (0.1 + 0.9 * (f + 0.5) / 2^F),   f = 0 .. 2^F - 1.
// The two codes left over (all-zero magnitude, negative zero) hold 0 and 1, so 0 is exact and
// the block maximum (normalized to 1) is exact. 8-bit signed: 127 positive, 127 negative, 0, 1;
// 8-bit unsigned: 254 positive, 0, 1; 4-bit signed: 7 positive, 7 negative, 0, 1.
// The values are those of bitsandbytes' create_dynamic_map(signed, bits - 1, bits).
//
// Linear map without zero (Li et al., 2023, "Memory Efficient Optimizers with 4-bit States",
// "Linear" mapping): value(i) = (i + 1) / 2^bits, i = 0 .. 2^bits - 1. It has no 0, so a
// quantized second moment never becomes 0 where it was not (the paper's zero-point problem: a
// zero v makes the update m / (sqrt(v) + eps) explode).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

constexpr int kMaxMapSize = 256;

// Index of the entry of the ascending `map` (N entries, N a power of 2) nearest to x; a tie
// goes to the lower entry, x below map[0] gives 0. Branch-free binary search of log2(N) steps,
// unrolled (N is a template argument).
template <int N>
LOWBIT_HD int nearest_map_index(const float* map, float x) {
  int lo = 0;  // invariant: map[lo] <= x, or lo == 0
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int half = N / 2; half > 0; half /= 2) lo = map[lo + half] <= x ? lo + half : lo;
  const bool up = lo + 1 < N && (map[lo + 1] - x) < (x - map[lo]);
  return up ? lo + 1 : lo;
}

// The same for the map sizes lowbit uses (16 and 256 entries).
LOWBIT_HD int nearest_map_index(const float* map, int n, float x) {
  return n == 16 ? nearest_map_index<16>(map, x) : nearest_map_index<256>(map, x);
}

// A map as a fixed-size value type, so a CUDA kernel can take it by value (kernel parameters
// live in constant memory) and copy it to shared memory.
struct QuantMap {
  float values[kMaxMapSize];
  int size;
};

// The dynamic tree map of `bits` (4 or 8) bits, signed or unsigned (see the file comment).
// Host only; built in double and rounded once to float.
inline QuantMap make_dynamic_tree_map(int bits, bool is_signed) {
  QuantMap map{};
  const int magnitude_bits = is_signed ? bits - 1 : bits;
  int n = 0;
  for (int e = 0; e <= bits - 2; ++e) {
    const int fraction_values = 1 << (magnitude_bits - 1 - e);
    for (int f = 0; f < fraction_values; ++f) {
      const double v = std::pow(10.0, -e) * (0.1 + 0.9 * (f + 0.5) / fraction_values);
      map.values[n++] = static_cast<float>(v);
      if (is_signed) map.values[n++] = static_cast<float>(-v);
    }
  }
  map.values[n++] = 0.0f;
  map.values[n++] = 1.0f;
  map.size = n;  // == 1 << bits
  std::sort(map.values, map.values + n);
  return map;
}

// The zero-free linear map (i + 1) / 2^bits (see the file comment).
inline QuantMap make_linear_map_without_zero(int bits) {
  QuantMap map{};
  map.size = 1 << bits;
  for (int i = 0; i < map.size; ++i) map.values[i] = static_cast<float>(i + 1) / static_cast<float>(map.size);
  return map;
}

// The process-wide tables (built once, on first use).
inline const QuantMap& dynamic_tree_map(int bits, bool is_signed) {
  static const std::array<QuantMap, 4> maps = {make_dynamic_tree_map(8, true), make_dynamic_tree_map(8, false),
                                               make_dynamic_tree_map(4, true), make_dynamic_tree_map(4, false)};
  return maps[(bits == 8 ? 0 : 2) + (is_signed ? 0 : 1)];
}

inline const QuantMap& linear_map_without_zero_4bit() {
  static const QuantMap map = make_linear_map_without_zero(4);
  return map;
}

}  // namespace lowbit::core
