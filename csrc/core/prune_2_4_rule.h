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
#include <cstring>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// The ranking key of one value: its magnitude or the value itself (NaN stays NaN).
template <typename K>
LOWBIT_HD K prune_key(K v, bool by_magnitude) {
  return by_magnitude && v < K(0) ? -v : v;
}

// A key as an unsigned integer that sorts in rank order: NaN above everything, -0 equal to +0,
// otherwise the float order (the sign-magnitude bits flipped into an unsigned order). Integer
// compares make the ranking branch-free.
LOWBIT_HD uint32_t prune_order_key(float k) {
  if (k != k) return 0xFFFFFFFFu;
  k = k + 0.0f;  // -0 -> +0
#if defined(__CUDA_ARCH__)
  const uint32_t b = __float_as_uint(k);
#else
  uint32_t b;
  std::memcpy(&b, &k, sizeof(b));
#endif
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

LOWBIT_HD uint64_t prune_order_key(double k) {
  if (k != k) return ~uint64_t(0);
  k = k + 0.0;
#if defined(__CUDA_ARCH__)
  const uint64_t b = static_cast<uint64_t>(__double_as_longlong(k));
#else
  uint64_t b;
  std::memcpy(&b, &k, sizeof(b));
#endif
  const uint64_t sign = uint64_t(1) << 63;
  return (b & sign) ? ~b : (b | sign);
}

// Rank of element i among n (0 = highest): the elements with a larger key, or an equal key at a
// lower position, rank above it.
template <int N, typename U>
LOWBIT_HD int prune_rank(const U (&u)[N], int i) {
  int rank = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int j = 0; j < N; ++j) rank += static_cast<int>((u[j] > u[i]) | ((u[j] == u[i]) & (j < i)));
  return rank;
}

// The greedy transposable choice for one 4x4 tile of keys (row-major, key[4 * row + col]).
// Returns the kept elements as bits (bit 4 * row + col).
template <typename K>
LOWBIT_HD uint32_t prune_tile_4x4(const K (&key)[16]) {
  using U = decltype(prune_order_key(K()));
  U u[16];
  for (int i = 0; i < 16; ++i) u[i] = prune_order_key(key[i]);
  uint8_t order[16];  // order[rank] = element
  for (int i = 0; i < 16; ++i) order[prune_rank(u, i)] = static_cast<uint8_t>(i);
  uint32_t kept = 0, row_count = 0, col_count = 0;  // 2 bits per row / column
  for (int r = 0; r < 16; ++r) {
    const int i = order[r];
    const int row_shift = 2 * (i >> 2), col_shift = 2 * (i & 3);
    const uint32_t keep = static_cast<uint32_t>((((row_count >> row_shift) & 3u) < 2) & (((col_count >> col_shift) & 3u) < 2));
    kept |= keep << i;
    row_count += keep << row_shift;
    col_count += keep << col_shift;
  }
  return kept;
}

// The two highest-ranked of one group of 4 keys, as bits (bit i = element i).
template <typename K>
LOWBIT_HD uint32_t prune_group_of_4(const K (&key)[4]) {
  using U = decltype(prune_order_key(K()));
  U u[4];
  for (int i = 0; i < 4; ++i) u[i] = prune_order_key(key[i]);
  uint32_t kept = 0;
  for (int i = 0; i < 4; ++i) kept |= static_cast<uint32_t>(prune_rank(u, i) < 2) << i;
  return kept;
}

}  // namespace lowbit::core
