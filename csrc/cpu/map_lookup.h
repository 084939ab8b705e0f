// A table that gives core::nearest_map_index(map, q) in O(1) with one load and one compare, for
// the vectorized CPU kernels (a binary search is 8 dependent loads per element; as a gather per
// step it would dominate the optimizer step). Built from the binary search itself, so it is exact
// by construction; tests/cpp/test_optim_kernels.cpp checks it around every threshold, and over
// every float in [-1, 1] when LOWBIT_EXHAUSTIVE_TESTS=1.
//
// nearest_map_index is a monotone step function of q. Map q in [-1, 1] to an int that orders like
// the float ("ordered": the magnitude bits, bit-inverted for negative q), after collapsing every
// |q| below F (the largest power of 2 under the first threshold away from 0, where the index is
// that of 0) into a few ulps around 0. Buckets of 2^shift consecutive ordered values each hold at
// most one threshold for the chosen shift; entry = (index at the bucket's start) << 24 | (offset
// of its threshold in the bucket, or 2^shift if none), and
//     index(q) = (entry >> 24) + ((ordered & (2^shift - 1)) >= (entry & 0xFFFFFF)).
// The 8-bit dynamic tree maps take shift 16 and about 5.6k entries (22 KiB, L1-resident).
#pragma once

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <lowbit/core/quantization_maps.h>

namespace lowbit::cpu {

struct MapLookup {
  int shift = 0;           // log2 of the bucket width in ordered values
  int32_t collapse = 0;    // magnitude bits subtracted before ordering (the |q| < F collapse)
  int32_t key_min = 0;     // the bucket of q = -1
  int zero_index = 0;      // nearest_map_index(map, 0): a block with scale 0 stores this
  std::vector<uint32_t> entries;

  // nearest_map_index(map, q) for every q that is not NaN (q is clamped to [-1, 1], which
  // changes no index: the maps end at 1 and start at or above -1).
  int index(float q) const {
    q = std::fmin(std::fmax(q, -1.0f), 1.0f);
    int32_t bits;
    std::memcpy(&bits, &q, sizeof(bits));
    const int32_t sign = bits >> 31;  // 0 or -1
    const int32_t ordered = std::max((bits & 0x7FFFFFFF) - collapse, 0) ^ sign;
    const uint32_t e = entries[(ordered >> shift) - key_min];
    return static_cast<int>(e >> 24) + ((ordered & ((1 << shift) - 1)) >= static_cast<int32_t>(e & 0xFFFFFF));
  }
};

namespace map_lookup_detail {

inline int32_t bits_of(float x) {
  int32_t b;
  std::memcpy(&b, &x, sizeof(b));
  return b;
}

inline float float_of(int32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof(x));
  return x;
}

// Smallest magnitude bit pattern in (lo, hi] where index(sign * float(mag)) != index(0), given
// index changes by hi (monotone); hi + 1 if it never changes.
template <typename F>
int32_t first_change(const F& index, bool negative, int32_t hi) {
  const int zero = index(0.0f);
  auto at = [&](int32_t mag) { return index(float_of(negative ? (mag | INT32_MIN) : mag)); };
  if (at(hi) == zero) return hi + 1;
  int32_t lo = 0;  // at(lo) == zero < at(hi) ... invariant
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    (at(mid) == zero ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace map_lookup_detail

// Builds the lookup of `map` (ascending, values in [-1, 1], ending at 1). Host only; a few ms.
inline MapLookup make_map_lookup(const core::QuantMap& map) {
  using namespace map_lookup_detail;
  auto ref = [&](float q) { return core::nearest_map_index(map.values, map.size, q); };
  const int32_t one = bits_of(1.0f);
  // F: below it, on either side, every q has the index of 0.
  const int32_t first = std::min(first_change(ref, false, one), first_change(ref, true, one));
  const int32_t f_bits = first & 0x7F800000;  // the power of 2 at or below the first change
  TORCH_CHECK(f_bits >= (1 << 23), "make_map_lookup: the map has a threshold in the subnormal range");
  for (int shift = 23; shift >= 8; --shift) {
    MapLookup lk;
    lk.shift = shift;
    lk.collapse = f_bits - (1 << shift);
    lk.zero_index = ref(0.0f);
    const int64_t width = int64_t{1} << shift;
    const int32_t o_max = one - lk.collapse, o_min = ~o_max;  // ordered(1), ordered(-1)
    auto value_at = [&](int32_t o) {  // the index at ordered value o
      const int32_t magp = o >= 0 ? o : ~o;
      return ref(float_of((magp + lk.collapse) | (o >= 0 ? 0 : INT32_MIN)));
    };
    const int64_t key_min = o_min >> shift, key_max = o_max >> shift;
    lk.key_min = static_cast<int32_t>(key_min);
    bool ok = true;
    for (int64_t key = key_min; key <= key_max && ok; ++key) {
      const int64_t start = key * width;
      const int32_t lo = static_cast<int32_t>(std::max<int64_t>(start, o_min));
      const int32_t hi = static_cast<int32_t>(std::min<int64_t>(start + width - 1, o_max));
      const int a = value_at(lo), b = value_at(hi);
      if (a == b) {
        lk.entries.push_back(static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(width));
      } else if (b == a + 1) {
        int32_t l = lo, h = hi;  // value_at(l) == a, value_at(h) == b
        while (h - l > 1) {
          const int32_t mid = l + (h - l) / 2;
          (value_at(mid) == a ? l : h) = mid;
        }
        lk.entries.push_back(static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(h - start));
      } else {
        ok = false;  // two thresholds in one bucket: narrower buckets
      }
    }
    if (ok) return lk;
  }
  TORCH_CHECK(false, "make_map_lookup: the map's entries are too close for a bucket table");
}

// The 16-entry maps (4-bit) need no table: thresholds[k] (k = 1 .. 15) is the smallest float q
// whose nearest entry is k or above, so nearest_map_index(map, q) = #{k >= 1 : thresholds[k] <= q}
// for q not NaN; a 4-step binary search over them vectorizes with permutes (thresholds[0] = -inf).
struct MapThresholds16 {
  float t[16];
};

inline MapThresholds16 make_map_thresholds16(const core::QuantMap& map) {
  using namespace map_lookup_detail;
  TORCH_CHECK(map.size == 16, "make_map_thresholds16: the map has ", map.size, " entries, not 16");
  auto ref = [&](float q) { return core::nearest_map_index(map.values, map.size, q); };
  // Floats in [-1, 1] as an ordered int (the negative ones bit-inverted), and back.
  auto ordered = [](float x) { const int32_t b = bits_of(x); return b >= 0 ? b : ~(b & 0x7FFFFFFF); };
  auto from_ordered = [](int32_t o) { return float_of(o >= 0 ? o : (~o | INT32_MIN)); };
  MapThresholds16 th{};
  th.t[0] = -INFINITY;
  for (int k = 1; k < 16; ++k) {
    int32_t lo = ordered(-1.0f), hi = ordered(1.0f);  // ref(lo) < k <= ref(hi)
    TORCH_CHECK(ref(from_ordered(lo)) < k && ref(from_ordered(hi)) >= k, "make_map_thresholds16: bad map");
    while (hi - lo > 1) {
      const int32_t mid = lo + (hi - lo) / 2;
      (ref(from_ordered(mid)) >= k ? hi : lo) = mid;
    }
    th.t[k] = from_ordered(hi);
  }
  return th;
}

}  // namespace lowbit::cpu
