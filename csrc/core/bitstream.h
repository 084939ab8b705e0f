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
#include <cstring>

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

// ---- Word-at-a-time reads, for kernels that stream packed rows ------------------------------
// 32 consecutive codes starting at a code index that is a multiple of 32 (a "chunk") fill exactly
// `bits` whole 32-bit words of the stream, since 32 * bits = 32 * (bits words). Read as
// little-endian uint32 (stream byte 4w is the low byte of word w; x86 and NVIDIA GPUs load that
// way natively), stream bit k is bit k % 32 of word k / 32, so a chunk decodes with shifts alone.

// Word w of the stream as a little-endian uint32, from bytes (host-order independent).
LOWBIT_HD uint32_t stream_word(const uint8_t* packed, int64_t w) {
  const uint8_t* p = packed + 4 * w;
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// Code j (0..31) of a chunk held as its `bits` words. Equals unpack_code(packed, bits, 32 * c + j)
// for chunk c with words[i] = stream_word(packed, c * bits + i). With bits and j compile-time
// constants (an unrolled loop in a kernel templated on bits) it folds to one or two shifts and a
// mask on registers.
LOWBIT_HD uint32_t chunk_code(const uint32_t* words, int bits, int j) {
  const int bit = j * bits;
  const int w = bit >> 5;
  const int offset = bit & 31;
  uint32_t v = words[w] >> offset;
  if (offset + bits > 32) v |= words[w + 1] << (32 - offset);  // straddles two words
  return v & ((1u << bits) - 1u);
}

// float(q) for 0 <= q < 2^23 without an int -> float conversion instruction (a slow, quarter-rate
// one on GPUs): 2^23 + q has q as its mantissa, and subtracting 2^23 is exact.
LOWBIT_HD float small_uint_to_float(uint32_t q) {
  const uint32_t bits = 0x4B000000u | q;  // the float 2^23 + q
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f - 8388608.0f;
}

// The value of an int8 stored as its byte (a code of an 8-bit stream), as float, exactly:
// byte ^ 0x80 is value + 128 in 0..255.
LOWBIT_HD float int8_byte_to_float(uint32_t byte) {
  const uint32_t bits = 0x4B000000u | ((byte & 0xffu) ^ 0x80u);  // 2^23 + value + 128
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f - 8388736.0f;  // 2^23 + 128
}

}  // namespace lowbit::core
