// The portable 2:4 compressed format (compress_2_4 / decompress_2_4): per aligned group of 4 along
// a row, the 2 stored values in position order and a 4-bit code of their positions,
// code = pos0 | pos1 << 2 with pos0 < pos1 (NVIDIA's logical 2:4 metadata; cuSPARSELt and CUTLASS
// reorder it into their own layouts). Two codes per byte, the even group in the low nibble. A
// group with fewer than 2 nonzeros also stores its lowest zero positions (their values are the
// zeros themselves), so decompression is exact, bit for bit.
//
// This is the dense-value part + metadata part of a 2:4 weight, the form a quantized-format entry
// can store and serialize; the GPU GEMM formats (cuSPARSELt's opaque packing) are built from it or
// from the pruned dense tensor at load time.
#pragma once

#include <cstdint>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// The two stored positions of a group whose nonzero positions are the bits of `present`: the
// nonzero ones first, then the lowest zero ones, returned ascending as a 4-bit code. With more
// than 2 nonzeros (not 2:4) the first two are taken; the CPU reference rejects such input first.
LOWBIT_HD uint32_t sparse_2_4_code(uint32_t present) {
  int pos[2] = {0, 0};
  int n = 0;
  for (int i = 0; i < 4 && n < 2; ++i)
    if ((present >> i) & 1u) pos[n++] = i;
  for (int i = 0; i < 4 && n < 2; ++i)
    if (!((present >> i) & 1u)) pos[n++] = i;
  const int lo = pos[0] < pos[1] ? pos[0] : pos[1], hi = pos[0] < pos[1] ? pos[1] : pos[0];
  return static_cast<uint32_t>(lo | (hi << 2));
}

LOWBIT_HD int sparse_2_4_pos0(uint32_t code) { return static_cast<int>(code & 3u); }
LOWBIT_HD int sparse_2_4_pos1(uint32_t code) { return static_cast<int>((code >> 2) & 3u); }

}  // namespace lowbit::core
