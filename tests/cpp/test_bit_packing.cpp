// lowbit::core::pack_uintx / unpack_uintx: round trips at every width, packed sizes, the exact
// little-endian bit-stream layout (checked against a bit-by-bit reference and hand-computed
// bytes), the word-at-a-time chunk reads of the CUDA linear kernels, and errors.
#include <gtest/gtest.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/zeros.h>

#include <random>
#include <string>
#include <vector>

#include <lowbit/core/bitstream.h>
#include <lowbit/core/bit_packing.h>

#include "expect_error.h"

namespace {

at::Tensor bytes(const std::vector<int>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kByte);
  for (size_t i = 0; i < v.size(); ++i) t.data_ptr<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  return t;
}

std::vector<int> as_vector(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::vector<int>(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
}

// Stream bit k = i*bits + j is bit j of code i, stored at bit k % 8 of byte k / 8.
std::vector<int> reference_pack(const std::vector<int>& codes, int bits) {
  std::vector<int> out((codes.size() * bits + 7) / 8, 0);
  for (size_t i = 0; i < codes.size(); ++i)
    for (int j = 0; j < bits; ++j) {
      const size_t k = i * bits + j;
      out[k / 8] |= ((codes[i] >> j) & 1) << (k % 8);
    }
  return out;
}


}  // namespace

TEST(BitPacking, RoundTripsAndLayoutAtEveryWidth) {
  std::mt19937 gen(11);
  for (int bits = 1; bits <= 8; ++bits) {
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    for (int64_t n : {0, 1, 7, 13, 1001}) {
      std::vector<int> codes(n);
      for (auto& c : codes) c = code(gen);
      const at::Tensor packed = lowbit::core::pack_uintx(bytes(codes), bits);
      ASSERT_EQ(packed.dim(), 1);
      EXPECT_EQ(packed.numel(), (n * bits + 7) / 8) << bits << " bits, n=" << n;
      EXPECT_EQ(as_vector(packed), reference_pack(codes, bits)) << bits << " bits, n=" << n;
      EXPECT_EQ(as_vector(lowbit::core::unpack_uintx(packed, bits, n)), codes) << bits << " bits, n=" << n;
    }
  }
}

TEST(BitPacking, Int4FirstCodeInTheLowNibble) {
  EXPECT_EQ(as_vector(lowbit::core::pack_uintx(bytes({0x1, 0x2, 0x3, 0xF, 0xA}), 4)),
            (std::vector<int>{0x21, 0xF3, 0x0A}));
}

TEST(BitPacking, Fp6FourCodesInThreeBytes) {
  // a=0x3F, b=0x00, c=0x2A, d=0x15: a | b<<6 = 0x3F; b>>2 | (c & 15)<<4 = 0xA0; c>>4 | d<<2 = 0x56.
  EXPECT_EQ(as_vector(lowbit::core::pack_uintx(bytes({0x3F, 0x00, 0x2A, 0x15}), 6)),
            (std::vector<int>{0x3F, 0xA0, 0x56}));
  // 1, 2, 3, 4, 5: 0x81, 0x30, 0x10, then the fifth code alone in the next byte.
  const at::Tensor packed = lowbit::core::pack_uintx(bytes({1, 2, 3, 4, 5}), 6);
  EXPECT_EQ(as_vector(packed), (std::vector<int>{0x81, 0x30, 0x10, 0x05}));
  EXPECT_EQ(as_vector(lowbit::core::unpack_uintx(packed, 6, 5)), (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(BitPacking, MultiDimCodesPackInFlatOrder) {
  const at::Tensor codes = bytes({1, 2, 3, 4, 5, 6}).view({2, 3});
  EXPECT_TRUE(at::equal(lowbit::core::pack_uintx(codes, 3), lowbit::core::pack_uintx(codes.reshape({-1}), 3)));
  EXPECT_TRUE(at::equal(lowbit::core::pack_uintx(codes.t(), 3), lowbit::core::pack_uintx(codes.t().contiguous(), 3)));
}

TEST(BitPacking, Errors) {
  expect_error([] { lowbit::core::pack_uintx(bytes({0, 16, 1}), 4); }, "code 16 at flat index 1 does not fit in 4 bits");
  expect_error([] { lowbit::core::pack_uintx(bytes({2}), 1); }, "does not fit in 1 bits");
  const at::Tensor packed = lowbit::core::pack_uintx(bytes({1, 1, 1, 1, 1, 1, 1}), 6);  // 6 bytes: room for 8
  EXPECT_EQ(lowbit::core::unpack_uintx(packed, 6, 8).numel(), 8);
  expect_error([&] { lowbit::core::unpack_uintx(packed, 6, 9); }, "6 bytes hold at most 8 codes of 6 bits, asked for 9");
  expect_error([&] { lowbit::core::unpack_uintx(packed, 6, -1); }, "numel must be >= 0");
  for (int bits : {0, 9}) {
    expect_error([&] { lowbit::core::pack_uintx(bytes({0}), bits); }, "is not supported; allowed: 1..8");
    expect_error([&] { lowbit::core::unpack_uintx(packed, bits, 1); }, "is not supported; allowed: 1..8");
  }
  expect_error([] { lowbit::core::pack_uintx(at::zeros({4}, at::kChar), 4); }, "allowed: torch.uint8");
  expect_error([] { lowbit::core::unpack_uintx(at::zeros({4}, at::kInt), 4, 1); }, "allowed: torch.uint8");
}

// The word-at-a-time reads the CUDA linear kernels use (csrc/cuda/weight_only_linear.cu): every
// code of every chunk, at every width, equals unpack_code on the same stream.
TEST(BitPacking, ChunkCodeMatchesUnpackCodeAtEveryWidth) {
  std::mt19937 gen(5);
  for (int bits = 1; bits <= 8; ++bits) {
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    constexpr int64_t kChunks = 7;
    std::vector<int> codes(32 * kChunks);
    for (auto& c : codes) c = code(gen);
    codes[0] = (1 << bits) - 1;  // all-ones codes at both ends of the stream
    codes.back() = (1 << bits) - 1;
    const at::Tensor packed = lowbit::core::pack_uintx(bytes(codes), bits);
    ASSERT_EQ(packed.numel(), 4 * bits * kChunks);  // whole words, `bits` per chunk
    const uint8_t* p = packed.data_ptr<uint8_t>();
    for (int64_t c = 0; c < kChunks; ++c) {
      uint32_t words[8];
      for (int i = 0; i < bits; ++i) words[i] = lowbit::core::stream_word(p, c * bits + i);
      for (int j = 0; j < 32; ++j) {
        const int64_t i = 32 * c + j;
        ASSERT_EQ(lowbit::core::chunk_code(words, bits, j), lowbit::core::unpack_code(p, bits, i))
            << bits << " bits, chunk " << c << ", code " << j;
        ASSERT_EQ(static_cast<int>(lowbit::core::chunk_code(words, bits, j)), codes[i]);
      }
    }
  }
}

TEST(BitPacking, StreamWordIsLittleEndian) {
  const at::Tensor b = bytes({0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF});
  EXPECT_EQ(lowbit::core::stream_word(b.data_ptr<uint8_t>(), 0), 0x67452301u);
  EXPECT_EQ(lowbit::core::stream_word(b.data_ptr<uint8_t>(), 1), 0xEFCDAB89u);
}

TEST(BitPacking, CodeToFloatIsExact) {
  for (uint32_t q = 0; q < 256; ++q) {
    EXPECT_EQ(lowbit::core::small_uint_to_float(q), static_cast<float>(q)) << q;
    EXPECT_EQ(lowbit::core::int8_byte_to_float(q), static_cast<float>(static_cast<int8_t>(q))) << q;
  }
  EXPECT_EQ(lowbit::core::small_uint_to_float((1u << 23) - 1), 8388607.0f);
}
