// lowbit::core::fpx_encode / fpx_decode against the format's definition, written here from
// scratch: bias = 2^(e-1)-1, exponent field 0 is subnormal, no inf/NaN codes; encode is the
// nearest value (ties to the even code), saturating, sign bit kept.
#include <gtest/gtest.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/zeros.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <lowbit/core/fpx.h>

#include "expect_error.h"

namespace {

struct Format {
  int e, m;
};

std::vector<Format> all_formats() {
  std::vector<Format> out;
  for (int e = 1; e <= 7; ++e)
    for (int m = 0; 1 + e + m <= 8; ++m)
      if (!(e == 4 && m == 3) && !(e == 5 && m == 2)) out.push_back({e, m});
  return out;
}

// Exact value of one code from the definition (double holds it exactly).
double reference_value(int code, Format f) {
  const int nbits = f.e + f.m;
  const bool negative = (code >> nbits) & 1;
  const int e = (code >> f.m) & ((1 << f.e) - 1);
  const int m = code & ((1 << f.m) - 1);
  const int bias = (1 << (f.e - 1)) - 1;
  const double v = e == 0 ? std::ldexp(static_cast<double>(m) / (1 << f.m), 1 - bias)
                          : std::ldexp(1.0 + static_cast<double>(m) / (1 << f.m), e - bias);
  return negative ? -v : v;
}

// Nearest magnitude code by brute force, ties to the even code, saturating; sign bit kept;
// NaN (no code) -> code 0, lowbit's documented choice.
int reference_encode(float x, Format f) {
  const int nbits = f.e + f.m, count = 1 << nbits;
  if (std::isnan(x)) return 0;
  const double a = std::fabs(static_cast<double>(x));
  int best = count - 1;
  if (a < reference_value(count - 1, f)) {
    double best_d = INFINITY;
    for (int c = 0; c < count; ++c) {
      const double d = std::fabs(reference_value(c, f) - a);
      if (d < best_d || (d == best_d && c % 2 == 0)) best = c, best_d = d;
    }
  }
  return best | (std::signbit(x) ? 1 << nbits : 0);
}

at::Tensor floats(const std::vector<float>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kFloat);
  std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

at::Tensor all_codes(Format f) {
  const int n = 1 << (1 + f.e + f.m);
  at::Tensor t = at::empty({n}, at::kByte);
  for (int c = 0; c < n; ++c) t.data_ptr<uint8_t>()[c] = static_cast<uint8_t>(c);
  return t;
}


std::string name(Format f) { return "e" + std::to_string(f.e) + "m" + std::to_string(f.m); }

}  // namespace

TEST(Fpx, ThereAre26Formats) { EXPECT_EQ(all_formats().size(), 26u); }

TEST(Fpx, DecodeIsExhaustivelyExact) {
  for (Format f : all_formats()) {
    const at::Tensor codes = all_codes(f);
    const at::Tensor values = lowbit::core::fpx_decode(codes, f.e, f.m);
    ASSERT_EQ(values.scalar_type(), at::kFloat);
    ASSERT_EQ(values.numel(), codes.numel());
    const float* v = values.data_ptr<float>();
    for (int c = 0; c < codes.numel(); ++c) {
      const double want = reference_value(c, f);
      EXPECT_EQ(static_cast<double>(v[c]), want) << name(f) << " code " << c;
      EXPECT_EQ(std::signbit(v[c]), std::signbit(want)) << name(f) << " code " << c;
    }
  }
}

TEST(Fpx, EncodeInvertsDecodeForEveryCode) {
  for (Format f : all_formats()) {
    const at::Tensor codes = all_codes(f);
    EXPECT_TRUE(at::equal(lowbit::core::fpx_encode(lowbit::core::fpx_decode(codes, f.e, f.m), f.e, f.m), codes))
        << name(f);
  }
}

TEST(Fpx, EncodeMatchesNearestValue) {
  std::mt19937 gen(7);
  for (Format f : all_formats()) {
    const int count = 1 << (f.e + f.m);
    const double smallest = reference_value(1, f), largest = reference_value(count - 1, f);
    std::uniform_real_distribution<double> log_mag(std::log2(smallest) - 3, std::log2(largest) + 2);
    std::uniform_real_distribution<double> lin(-1.25 * largest, 1.25 * largest);
    std::vector<float> x;
    for (int i = 0; i < 300; ++i) {
      x.push_back(static_cast<float>((i % 2 ? -1 : 1) * std::exp2(log_mag(gen))));
      x.push_back(static_cast<float>(lin(gen)));
    }
    // Ties (midpoints of neighbours) and one float32 ulp either side of them.
    for (int c = 0; c + 1 < count; ++c) {
      const float mid = static_cast<float>((reference_value(c, f) + reference_value(c + 1, f)) / 2);
      for (float t : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
        x.push_back(t);
        x.push_back(-t);
      }
    }
    const float inf = std::numeric_limits<float>::infinity();
    for (float t : {0.0f, -0.0f, 1e-40f, -1e-40f, 1e30f, -1e30f, inf, -inf, std::nanf(""), -std::nanf("")})
      x.push_back(t);
    const at::Tensor codes = lowbit::core::fpx_encode(floats(x), f.e, f.m);
    ASSERT_EQ(codes.scalar_type(), at::kByte);
    const uint8_t* got = codes.data_ptr<uint8_t>();
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(static_cast<int>(got[i]), reference_encode(x[i], f)) << name(f) << " x=" << x[i];
  }
}

TEST(Fpx, KnownFp6Values) {
  // e3m2: 1.125 ties to 1.0 (0x0C, even); 1.375 ties to 1.5 (0x0E); 29 saturates to 28 (0x1F);
  // -0.0 keeps its sign bit (0x20).
  const at::Tensor codes = lowbit::core::fpx_encode(floats({1.125f, 1.375f, 29.0f, -0.0f, 1.0f / 16}), 3, 2);
  const std::vector<int> want = {0x0C, 0x0E, 0x1F, 0x20, 0x01};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(codes.data_ptr<uint8_t>()[i], want[i]) << i;
  const at::Tensor back = lowbit::core::fpx_decode(codes, 3, 2);
  EXPECT_EQ(back.data_ptr<float>()[2], 28.0f);
  EXPECT_TRUE(std::signbit(back.data_ptr<float>()[3]));
}

TEST(Fpx, LowPrecisionOutputs) {
  const at::Tensor codes = all_codes({2, 3});
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    const at::Tensor out = lowbit::core::fpx_decode(codes, 2, 3, dtype);
    EXPECT_EQ(out.scalar_type(), dtype);
    EXPECT_TRUE(at::equal(out, lowbit::core::fpx_decode(codes, 2, 3).to(dtype)));
    EXPECT_TRUE(at::equal(lowbit::core::fpx_encode(out, 2, 3), codes));
  }
}

TEST(Fpx, Errors) {
  const at::Tensor x = at::zeros({4});
  const at::Tensor c = at::zeros({4}, at::kByte);
  for (Format bad : std::vector<Format>{{0, 3}, {-1, 2}, {2, -1}, {4, 4}, {8, 0}, {1, 7}}) {
    expect_error([&] { lowbit::core::fpx_encode(x, bad.e, bad.m); }, "is not a valid format");
    expect_error([&] { lowbit::core::fpx_decode(c, bad.e, bad.m); }, "is not a valid format");
  }
  for (Format native : std::vector<Format>{{4, 3}, {5, 2}}) {
    expect_error([&] { lowbit::core::fpx_encode(x, native.e, native.m); }, "torch-native float8");
    expect_error([&] { lowbit::core::fpx_decode(c, native.e, native.m); }, "torch-native float8");
  }
  expect_error([&] { lowbit::core::fpx_encode(at::zeros({4}, at::kInt), 3, 2); }, "fpx_encode: input dtype");
  expect_error([&] { lowbit::core::fpx_decode(at::zeros({4}, at::kChar), 3, 2); }, "allowed: torch.uint8");
  expect_error([&] { lowbit::core::fpx_decode(x, 3, 2); }, "allowed: torch.uint8");
  expect_error([&] { lowbit::core::fpx_decode(c, 3, 2, at::kInt); }, "output dtype");
  expect_error([&] { lowbit::core::fpx_decode(at::full_like(c, 64), 3, 2); }, "does not fit");
}
