// The 2:4 pruning rule, per tile and per group: the one definition that the CPU reference
// (csrc/cpu/prune_2_4.cpp) and the CUDA kernel (csrc/cuda/prune_2_4.cu) both run, so their masks
// agree bit for bit by construction.
//
// Ranking. Each element gets a key: |v| (largest_abs*) or v (largest). An element ranks above
// another when its key is larger; NaN ranks above every number (a NaN weight stays visible
// instead of being pruned away silently); equal keys (ties, +0 and -0 included) go to the
// element earlier in row-major order inside its tile or group. This is a strict total order, so
// the result never depends on the order in which a kernel looks at the elements.
//
// Tiles (largest_abs, largest): an aligned 4x4 tile keeps at most 2 per row AND per column, so
// the transpose is 2:4 as well. Greedy: walk the elements from the highest rank down and keep one
// whenever its row and its column both hold fewer than 2 kept. The greedy choice is maximal (no
// further element fits) but not always maximum: it can corner itself. Once high-ranked elements
// have filled two columns, a row whose free slots all lie in those columns ends with fewer than 2
// (e.g. kept (0,0) (0,1) (1,0) (2,1) (1,2) (2,2): row 3 can only take (3,3), 7 kept). It never keeps
// fewer than 7: a row and a column both short of 2 would meet in a free cell that fits. On Gaussian
// data 84% of tiles keep 8 and the mean is 7.84 of 8, i.e. 49.0% density instead of 50%
// (tests/python/test_sparse_prune.py measures it).
//
// Groups (largest_abs_rows): each aligned group of 4 along a row keeps its 2 highest-ranked
// elements (always exactly 2). Not transposable.
#pragma once

#include <cstdint>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// Whether (a at position ia) ranks above (b at position ib); K is float or double. NaN first,
// then larger keys, then the lower position.
template <typename K>
LOWBIT_HD bool prune_ranks_above(K a, int ia, K b, int ib) {
  const bool a_nan = a != a, b_nan = b != b;
  if (a_nan || b_nan) return a_nan && (!b_nan || ia < ib);
  if (a != b) return a > b;
  return ia < ib;
}

// The ranking key of one value: its magnitude or the value itself (NaN stays NaN).
template <typename K>
LOWBIT_HD K prune_key(K v, bool by_magnitude) {
  return by_magnitude && v < K(0) ? -v : v;
}

// The greedy transposable choice for one 4x4 tile of keys (row-major, key[4 * row + col]).
// Returns the kept elements as bits (bit 4 * row + col). Picking the highest-ranked element that
// still fits, again and again, keeps exactly what the rank-order walk keeps: an element skipped in
// that walk had a full row or column, and counts only grow.
template <typename K>
LOWBIT_HD uint32_t prune_tile_4x4(const K (&key)[16]) {
  uint32_t kept = 0;
  uint32_t row_count = 0, col_count = 0;  // 2 bits per row / column
  for (int step = 0; step < 8; ++step) {
    int best = -1;
    K best_key = K(0);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int j = 0; j < 16; ++j) {
      const int r = j >> 2, c = j & 3;
      const bool free = !((kept >> j) & 1u) && ((row_count >> (2 * r)) & 3u) < 2 && ((col_count >> (2 * c)) & 3u) < 2;
      if (free && (best < 0 || prune_ranks_above(key[j], j, best_key, best))) {
        best = j;
        best_key = key[j];
      }
    }
    if (best < 0) break;
    kept |= 1u << best;
    row_count += 1u << (2 * (best >> 2));
    col_count += 1u << (2 * (best & 3));
  }
  return kept;
}

// The two highest-ranked of one group of 4 keys, as bits (bit i = element i).
template <typename K>
LOWBIT_HD uint32_t prune_group_of_4(const K (&key)[4]) {
  uint32_t kept = 0;
  for (int step = 0; step < 2; ++step) {
    int best = -1;
    K best_key = K(0);
    for (int j = 0; j < 4; ++j) {
      if (!((kept >> j) & 1u) && (best < 0 || prune_ranks_above(key[j], j, best_key, best))) {
        best = j;
        best_key = key[j];
      }
    }
    kept |= 1u << best;
  }
  return kept;
}

}  // namespace lowbit::core
