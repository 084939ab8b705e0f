// Bit packing of `bits`-wide codes (1..8) into a little-endian bit stream: code i occupies
// stream bits [i*bits, (i+1)*bits), least significant bit first, and stream bit k lives in
// byte k/8 at position k%8. So int4 packs two codes per byte (first in the low nibble) and
// fp6 packs four codes into three bytes. n codes take ceil(n*bits/8) bytes; unused high bits
// of the last byte are zero.
//
// Both directions are written per OUTPUT element, so every byte or code is computed
// independently: a plain loop on the CPU, one thread per element on the GPU.
#pragma once

#include <cstdint>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

LOWBIT_HD int64_t packed_num_bytes(int64_t numel, int bits) { return (numel * bits + 7) / 8; }

// Byte j of the packed stream, gathered from the codes that overlap it.
LOWBIT_HD uint8_t pack_byte(const uint8_t* codes, int64_t numel, int bits, int64_t j) {
  const int64_t first_bit = j * 8;
  const int64_t first = first_bit / bits;
  const int64_t last = (first_bit + 7) / bits;  // inclusive
  const uint32_t mask = (1u << bits) - 1u;
  uint32_t byte = 0;
  for (int64_t i = first; i <= last && i < numel; ++i) {
    const int64_t offset = i * bits - first_bit;  // may be negative for the first code
    const uint32_t code = codes[i] & mask;
    byte |= offset >= 0 ? (code << offset) : (code >> -offset);
  }
  return static_cast<uint8_t>(byte & 0xffu);
}

// Code i of the packed stream (it spans at most two bytes since bits <= 8).
LOWBIT_HD uint8_t unpack_code(const uint8_t* packed, int bits, int64_t i) {
  const int64_t bit = i * bits;
  const int64_t byte = bit >> 3;
  const int offset = static_cast<int>(bit & 7);
  uint32_t v = packed[byte] >> offset;
  if (offset + bits > 8) v |= static_cast<uint32_t>(packed[byte + 1]) << (8 - offset);
  return static_cast<uint8_t>(v & ((1u << bits) - 1u));
}

}  // namespace lowbit::core
