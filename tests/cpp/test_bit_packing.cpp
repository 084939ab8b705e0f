// lowbit::core::pack_uintx / unpack_uintx: round trips at every width, packed sizes, the exact
// little-endian bit-stream layout (checked against a bit-by-bit reference and hand-computed
// bytes), and errors.
#include <gtest/gtest.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/zeros.h>

#include <random>
#include <string>
#include <vector>

#include <lowbit/ops/bit_packing.h>

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
  expect_error([] { lowbit::core::pack_uintx(at::zeros({4}, at::kChar), 4); }, "codes must be torch.uint8");
  expect_error([] { lowbit::core::unpack_uintx(at::zeros({4}, at::kInt), 4, 1); }, "packed must be torch.uint8");
}
