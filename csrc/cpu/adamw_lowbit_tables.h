// The tables the vectorized AdamW kernels read: the quantization maps, their bucket lookups
// (map_lookup.h) and the e4m3 decode table. Built once, in a translation unit compiled for the
// baseline instruction set (adamw_lowbit.cpp), and handed to the per-instruction-set kernels as
// plain pointers, so those kernels share no out-of-line code with the rest of the library.
#pragma once

#include <cstdint>
#include <cstring>

#include <lowbit/core/quantization_maps.h>

namespace lowbit::cpu::adamw {

// A MapLookup as the kernels read it (see map_lookup.h for the algorithm).
struct LookupView {
  const int32_t* entries;
  int32_t shift, collapse, key_min, zero_index;

  // MapLookup::index: core::nearest_map_index of q for q not NaN.
  int index(float q) const {
    q = q < -1.0f ? -1.0f : (q > 1.0f ? 1.0f : q);
    int32_t bits;
    std::memcpy(&bits, &q, sizeof(bits));
    const int32_t magp = (bits & 0x7FFFFFFF) - collapse;
    const int32_t ordered = (magp > 0 ? magp : 0) ^ (bits >> 31);
    const uint32_t e = static_cast<uint32_t>(entries[(ordered >> shift) - key_min]);
    return static_cast<int>(e >> 24) + ((ordered & ((1 << shift) - 1)) >= static_cast<int32_t>(e & 0xFFFFFF));
  }
};

// A 16-entry map's thresholds (map_lookup.h, MapThresholds16) laid out for a 4-step vectorized
// binary search: all[k] = threshold k (all[0] = -inf); for 8-lane permutes, step1[i] = all[8i + 4],
// step2[i] = all[4i + 2], step3[i] = all[2i + 1].
struct Search16 {
  alignas(64) float all[16];
  alignas(32) float step1[8], step2[8], step3[8];

  // nearest_map_index of q for q not NaN.
  int index(float q) const {
    int idx = 0;
    for (int half = 8; half > 0; half /= 2) idx += all[idx + half] <= q ? half : 0;
    return idx;
  }
};

// A 256-entry float table as four byte planes (plane p holds byte p of every entry), for decoders
// that look codes up with byte permutes (vpermi2b) instead of a gather.
struct BytePlanes256 {
  alignas(64) uint8_t plane[4][256];
};

inline BytePlanes256 byte_planes(const float* table) {
  BytePlanes256 t{};
  for (int e = 0; e < 256; ++e) {
    uint32_t bits;
    std::memcpy(&bits, table + e, sizeof(bits));
    for (int p = 0; p < 4; ++p) t.plane[p][e] = static_cast<uint8_t>(bits >> (8 * p));
  }
  return t;
}

struct KernelTables {
  const core::QuantMap *map8_m, *map8_v, *map4_m, *map4_v;  // signed / unsigned 8-bit tree, 4-bit tree, 4-bit linear
  const BytePlanes256 *planes8_m, *planes8_v;               // the 8-bit maps as byte planes
  LookupView lookup8_m, lookup8_v;
  Search16 search4_m, search4_v;
  const float* e4m3;  // float value of each e4m3fn byte (NaN for 0x7F, 0xFF)
};

// The process-wide tables (built on first use).
const KernelTables& kernel_tables();

}  // namespace lowbit::cpu::adamw
