// lowbit's one semantics for non-finite values (README "Non-finite values") in the C++ face:
// scales from the finite values of a block; ±inf saturates with its sign; NaN stays NaN in
// float8, is code 0 in fpX, and poisons its block's scale in the affine formats (so NaN in gives
// NaN out, never finite garbage). Each test here fails on the code before that rule existed.
#include <gtest/gtest.h>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/full.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/isnan.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>
#include <limits>
#include <vector>

#include <lowbit/core/affine.h>
#include <lowbit/core/bit_packing.h>
#include <lowbit/core/fake_quantize.h>
#include <lowbit/core/float8_cast.h>
#include <lowbit/core/float8_format.h>
#include <lowbit/core/fpx.h>
#include <lowbit/quant/config.h>
#include <lowbit/quant/quantized_weight.h>

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::nanf("");

// Random (rows, cols) with +inf at (0, 1), -inf at (1, 2), NaN at (2, 3).
at::Tensor with_non_finite(int64_t rows, int64_t cols) {
  at::Tensor x = at::randn({rows, cols});
  x[0][1].fill_(kInf);
  x[1][2].fill_(-kInf);
  x[2][3].fill_(kNaN);
  return x;
}

at::Tensor finite_or_zero(const at::Tensor& x) { return at::where(at::isfinite(x), x, at::zeros_like(x)); }

}  // namespace

TEST(NonFinite, Float8InfSaturatesWithItsSignNaNStays) {
  for (at::ScalarType dtype : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
    const float top = lowbit::core::float8_max_finite(dtype);
    for (const char* granularity : {"tensor", "row", "column"}) {
      for (bool pow2 : {false, true}) {
        SCOPED_TRACE(std::string(granularity) + " " + c10::toString(dtype));
        const at::Tensor x = with_non_finite(6, 16);
        const auto [data, scale] = lowbit::core::cast_to_float8(x, dtype, granularity, pow2);
        const at::Tensor d = data.to(at::kFloat);
        EXPECT_EQ(d[0][1].item<float>(), top);  // before: -448 (inf / inf = NaN, clamped to -max)
        EXPECT_EQ(d[1][2].item<float>(), -top);
        EXPECT_TRUE(std::isnan(d[2][3].item<float>()));
        EXPECT_EQ(at::isnan(d).sum().item<int64_t>(), 1);
        // Scales are those of the finite values alone.
        const auto [data_f, scale_f] = lowbit::core::cast_to_float8(finite_or_zero(x), dtype, granularity, pow2);
        EXPECT_TRUE(scale.equal(scale_f));
      }
    }
  }
}

TEST(NonFinite, Float8BitsAreC10sConversion) {
  // The branch-free float8 encoders (shared by the CPU and CUDA kernels) against c10's scalar
  // conversion over every exponent, every pattern of the top 8 mantissa bits (round and guard
  // bits of both formats, normal and subnormal) and low patterns that decide ties and sticky bits.
  const uint32_t lows[] = {0u, 1u, 0x3FFFu, 0x4000u, 0x7FFFu};
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t exponent = 0; exponent < 256; ++exponent) {
      for (uint32_t top = 0; top < 256; ++top) {
        for (uint32_t low : lows) {
          const uint32_t bits = (sign << 31) | (exponent << 23) | (top << 15) | low;
          const float f = lowbit::core::float_of(bits);
          ASSERT_EQ(lowbit::core::float8_e4m3fn_bits(f), c10::Float8_e4m3fn(f).x) << std::hex << bits;
          ASSERT_EQ(lowbit::core::float8_e5m2_bits(f), c10::Float8_e5m2(f).x) << std::hex << bits;
        }
      }
    }
  }
}

TEST(NonFinite, FpxInfSaturatesNaNIsCodeZero) {
  const at::Tensor x = at::tensor({kInf, -kInf, kNaN, -kNaN});
  const at::Tensor codes = lowbit::core::fpx_encode(x, 3, 2);
  const uint8_t* c = codes.data_ptr<uint8_t>();
  EXPECT_EQ(c[0], 0x1F);
  EXPECT_EQ(c[1], 0x3F);
  EXPECT_EQ(c[2], 0);  // before: 0x1F, the largest magnitude
  EXPECT_EQ(c[3], 0);
}

TEST(NonFinite, AffineNaNPoisonsItsBlockInfSaturates) {
  for (auto [mapping, domain] : std::vector<std::pair<const char*, const char*>>{
           {"symmetric", "int"}, {"asymmetric", "int"}, {"asymmetric", "float"}}) {
    SCOPED_TRACE(std::string(mapping) + " " + domain);
    const at::Tensor x = with_non_finite(4, 32);
    const auto [scale, zp] = lowbit::core::choose_qparams_affine(x, {1, 32}, "int8", mapping, domain);
    EXPECT_TRUE(std::isnan(scale[2][0].item<float>()));  // before: a finite scale
    EXPECT_TRUE(at::isfinite(scale.slice(0, 0, 2)).all().item<bool>());
    const at::Tensor q = lowbit::core::quantize_affine(x, {1, 32}, scale, zp, "int8", domain);
    EXPECT_EQ(q[0][1].item<int8_t>(), 127);   // +inf: the top code
    EXPECT_EQ(q[1][2].item<int8_t>(), -128);  // -inf: the bottom code
    EXPECT_TRUE(q[2].eq(0).all().item<bool>());
    const at::Tensor deq = lowbit::core::dequantize_affine(q, {1, 32}, scale, zp, "int8", domain);
    EXPECT_TRUE(at::isnan(deq[2]).all().item<bool>());
    EXPECT_TRUE(at::isfinite(deq[3]).all().item<bool>());
    // The inf does not stretch its block's range: row 0's scale equals that of row 0 without it.
    at::Tensor row0 = x[0].clone().unsqueeze(0);
    row0[0][1].fill_(row0[0][0].item<float>());
    const auto [s0, zp0] = lowbit::core::choose_qparams_affine(row0, {1, 32}, "int8", mapping, domain);
    EXPECT_EQ(scale[0][0].item<float>(), s0.item<float>());
  }
}

TEST(NonFinite, FakeQuantizeNaNInNaNOut) {
  const at::Tensor x = with_non_finite(4, 64);
  const at::Tensor y = lowbit::core::fake_quantize_affine(x, {1, 16}, "int4", "symmetric");
  EXPECT_TRUE(at::isnan(y[2].slice(0, 0, 16)).all().item<bool>());
  EXPECT_TRUE(at::isfinite(y[2].slice(0, 16)).all().item<bool>());
  EXPECT_TRUE(at::isfinite(y[0]).all().item<bool>());
  EXPECT_EQ(y[0][1].item<float>(), y[0].slice(0, 0, 16).max().item<float>());
}

TEST(NonFinite, Int8DynamicLinearNaNRowIsNaN) {
  const at::Tensor w = at::randn({16, 32});
  const auto qw = lowbit::quant::quantize_weight(w, lowbit::quant::parse_quantize_config("int8dq"));
  at::Tensor x = at::randn({3, 32});
  x[1][4].fill_(kNaN);
  x[2][5].fill_(-kInf);
  const at::Tensor y = lowbit::quant::quantized_linear(x, qw, std::nullopt);
  EXPECT_TRUE(at::isnan(y[1]).all().item<bool>());  // before: finite garbage
  EXPECT_TRUE(at::isfinite(y[0]).all().item<bool>());
  EXPECT_TRUE(at::isfinite(y[2]).all().item<bool>());
}
