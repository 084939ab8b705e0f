// lowbit::core::cast_to_float8: scale shapes and values, exact data, the rounding bound,
// power-of-2 scales, saturation and errors.
//
// Bound per element (m mantissa bits, s its scale): data = RNE_fp8(clamp(fl32(x / s))), so
//   |data * s - x| <= 2^-(m+1) |x| + (min_subnormal / 2) s + 2^-22 |x|
// (half an ulp in the normal range, half the subnormal spacing below it, and the float32
// division / clamp roundings).
#include <gtest/gtest.h>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/frexp.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <lowbit/core/float8_cast.h>

#include "expect_error.h"

namespace {

struct Fp8Format {
  at::ScalarType dtype;
  int mbits;
  float max_finite;
  double min_subnormal;
};

const Fp8Format kFormats[] = {{at::kFloat8_e4m3fn, 3, 448.0f, std::ldexp(1.0, -9)},
                              {at::kFloat8_e5m2, 2, 57344.0f, std::ldexp(1.0, -16)}};
const char* kGranularities[] = {"tensor", "row", "column"};

// Normal values with per-row magnitudes spread over 2^-6..2^6, and a few exact zeros.
at::Tensor sample(at::IntArrayRef shape, uint32_t seed) {
  at::Tensor x = at::empty(shape, at::kFloat);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> exponent(-6, 6);
  const int64_t cols = shape.back();
  float* p = x.data_ptr<float>();
  float row_scale = 1.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (i % cols == 0) row_scale = std::ldexp(1.0f, exponent(gen));
    p[i] = i % 5 == 0 ? 0.0f : normal(gen) * row_scale;
  }
  return x;
}

at::Tensor reference_scale(const at::Tensor& x, const std::string& granularity, float max_finite) {
  const at::Tensor a = x.to(at::kFloat).abs();
  const at::Tensor amax = granularity == "tensor" ? a.amax()
                          : granularity == "row"  ? a.amax({-1}, /*keepdim=*/true)
                                                  : a.amax({-2}, /*keepdim=*/true);
  return amax.clamp_min(1e-12).div(max_finite);
}

std::vector<int64_t> scale_shape(at::IntArrayRef shape, const std::string& granularity) {
  if (granularity == "tensor") return {};
  std::vector<int64_t> s(shape.begin(), shape.end());
  s[s.size() - (granularity == "row" ? 1 : 2)] = 1;
  return s;
}


}  // namespace

TEST(Float8Cast, ScaleDataAndBound) {
  uint32_t seed = 1;
  for (const Fp8Format& f : kFormats) {
    for (const char* granularity : kGranularities) {
      for (at::ScalarType in_dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
        for (std::vector<int64_t> shape : {std::vector<int64_t>{16, 48}, std::vector<int64_t>{3, 5, 7}}) {
          SCOPED_TRACE(std::string(granularity) + " " + c10::toString(f.dtype) + " " + c10::toString(in_dtype));
          const at::Tensor x = sample(shape, seed++).to(in_dtype);
          const auto [data, scale] = lowbit::core::cast_to_float8(x, f.dtype, granularity);
          EXPECT_EQ(data.scalar_type(), f.dtype);
          EXPECT_EQ(data.sizes(), x.sizes());
          EXPECT_EQ(scale.scalar_type(), at::kFloat);
          EXPECT_EQ(scale.sizes().vec(), scale_shape(shape, granularity));
          EXPECT_TRUE(at::equal(scale, reference_scale(x, granularity, f.max_finite)));
          const at::Tensor xf = x.to(at::kFloat);
          const at::Tensor expected = xf.div(scale).clamp(-f.max_finite, f.max_finite).to(f.dtype);
          EXPECT_TRUE(at::equal(data.view(at::kByte), expected.view(at::kByte)));
          const at::Tensor err = (data.to(at::kDouble) * scale.to(at::kDouble) - xf.to(at::kDouble)).abs();
          const at::Tensor bound = xf.to(at::kDouble).abs() * (std::ldexp(1.0, -(f.mbits + 1)) + std::ldexp(1.0, -22)) +
                                   scale.to(at::kDouble) * (f.min_subnormal / 2);
          EXPECT_TRUE(err.le(bound).all().item<bool>());
          EXPECT_EQ(data.to(at::kFloat).abs().max().item<float>(), f.max_finite);
        }
      }
    }
  }
}

TEST(Float8Cast, PowerOf2Scales) {
  for (const Fp8Format& f : kFormats) {
    for (const char* granularity : kGranularities) {
      const at::Tensor x = sample({4, 12, 20}, 99);
      const auto [data, scale] = lowbit::core::cast_to_float8(x, f.dtype, granularity, /*power_of_2_scale=*/true);
      const at::Tensor exact = reference_scale(x, granularity, f.max_finite);
      EXPECT_TRUE(std::get<0>(at::frexp(scale)).eq(0.5).all().item<bool>()) << granularity;
      EXPECT_TRUE(scale.ge(exact).all().item<bool>()) << granularity;
      EXPECT_TRUE(scale.lt(exact * 2).all().item<bool>()) << granularity;
      const at::Tensor expected = x.div(scale).clamp(-f.max_finite, f.max_finite).to(f.dtype);
      EXPECT_TRUE(at::equal(data.view(at::kByte), expected.view(at::kByte))) << granularity;
    }
  }
}

TEST(Float8Cast, SaturatesWithoutNaN) {
  for (const Fp8Format& f : kFormats) {
    for (const char* granularity : kGranularities) {
      for (bool pow2 : {false, true}) {
        at::Tensor x = sample({6, 10}, 5) * 1e-3;
        float* p = x.data_ptr<float>();
        p[0] = 3.4028235e38f;
        p[13] = -3.4028235e38f;
        p[59] = 1e38f;
        p[20] = 1e-45f;
        const auto [data, scale] = lowbit::core::cast_to_float8(x, f.dtype, granularity, pow2);
        const at::Tensor d = data.to(at::kFloat);
        EXPECT_TRUE(d.isfinite().all().item<bool>()) << granularity;
        EXPECT_TRUE(scale.isfinite().all().item<bool>()) << granularity;
        EXPECT_LE(d.abs().max().item<float>(), f.max_finite);
      }
    }
  }
}

TEST(Float8Cast, ZerosGiveZerosAndTheEpsScale) {
  for (const Fp8Format& f : kFormats) {
    for (const char* granularity : kGranularities) {
      const auto [data, scale] = lowbit::core::cast_to_float8(at::zeros({2, 4, 6}), f.dtype, granularity);
      EXPECT_TRUE(data.to(at::kFloat).eq(0).all().item<bool>());
      EXPECT_TRUE(scale.eq(1e-12f / f.max_finite).all().item<bool>());
    }
  }
}

TEST(Float8Cast, Errors) {
  const at::Tensor x = at::zeros({4, 8});
  expect_error([&] { lowbit::core::cast_to_float8(at::zeros({4, 8}, at::kInt), at::kFloat8_e4m3fn); },
               "input dtype torch.int32 is not supported");
  expect_error([&] { lowbit::core::cast_to_float8(x, at::kHalf); }, "allowed: torch.float8_e4m3fn, torch.float8_e5m2");
  expect_error([&] { lowbit::core::cast_to_float8(x, at::kFloat8_e4m3fn, "block"); }, "unknown granularity 'block'");
  expect_error([&] { lowbit::core::cast_to_float8(at::zeros({8}), at::kFloat8_e4m3fn, "row"); },
               "needs an input with at least 2 dims");
  EXPECT_EQ(lowbit::core::float8_max_finite(at::kFloat8_e4m3fn), 448.0f);
  EXPECT_EQ(lowbit::core::float8_max_finite(at::kFloat8_e5m2), 57344.0f);
  expect_error([&] { lowbit::core::float8_max_finite(at::kFloat); }, "is not supported");
}
