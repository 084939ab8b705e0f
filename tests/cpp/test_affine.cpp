// lowbit::core affine quantization: round trips over every width, mapping, zero-point domain and
// block size; a per-element reference of the documented formulas; known values; errors.
#include <gtest/gtest.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/zeros.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <lowbit/core/affine.h>

#include "expect_error.h"

namespace {

struct Scheme {
  const char* mapping;
  const char* domain;
};
const Scheme kSchemes[] = {{"symmetric", "int"}, {"asymmetric", "int"}, {"asymmetric", "float"}};

struct Range {
  int qmin, qmax;
};
Range qrange(const std::string& qdtype) {
  const bool is_signed = qdtype[0] == 'i';
  const int bits = qdtype.back() - '0';
  return is_signed ? Range{-(1 << (bits - 1)), (1 << (bits - 1)) - 1} : Range{0, (1 << bits) - 1};
}

std::vector<std::string> qdtypes() {
  std::vector<std::string> out;
  for (int b = 1; b <= 8; ++b) {
    out.push_back("int" + std::to_string(b));
    out.push_back("uint" + std::to_string(b));
  }
  return out;
}

// Rows of different ranges and offsets, with exact zeros.
at::Tensor sample(at::IntArrayRef shape, uint32_t seed) {
  at::Tensor x = at::empty(shape, at::kFloat);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> exponent(-4, 4);
  float* p = x.data_ptr<float>();
  float row_scale = 1.0f, row_offset = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (i % shape.back() == 0) row_scale = std::ldexp(1.0f, exponent(gen)), row_offset = normal(gen);
    p[i] = i % 5 == 0 ? 0.0f : normal(gen) * row_scale + row_offset;
  }
  return x;
}

// Linear index of the block holding flat element i of a contiguous tensor.
int64_t block_of(int64_t i, at::IntArrayRef sizes, at::IntArrayRef block) {
  int64_t out = 0, stride = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    out += (i % sizes[d]) / block[d] * stride;
    stride *= sizes[d] / block[d];
    i /= sizes[d];
  }
  return out;
}


}  // namespace

TEST(Affine, RoundTripsWithinHalfAScale) {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<std::vector<int64_t>>>> cases = {
      {{8, 256}, {{8, 256}, {1, 256}, {1, 32}, {1, 64}, {1, 128}}},
      {{2, 6, 128}, {{2, 6, 128}, {1, 1, 32}, {1, 3, 64}}},
  };
  uint32_t seed = 0;
  for (const std::string& qdtype : qdtypes()) {
    const Range r = qrange(qdtype);
    const float mid = static_cast<float>((r.qmin + r.qmax + 1) / 2);
    for (const Scheme& sch : kSchemes) {
      const bool int_domain = std::string(sch.domain) == "int";
      for (const auto& [shape, blocks] : cases) {
        const at::Tensor x = sample(shape, ++seed);
        for (const auto& block : blocks) {
          SCOPED_TRACE(qdtype + " " + sch.mapping + " " + sch.domain + " block " + c10::str(at::IntArrayRef(block)));
          const auto [scale, zp] = lowbit::core::choose_qparams_affine(x, block, qdtype, sch.mapping, sch.domain);
          const at::Tensor q = lowbit::core::quantize_affine(x, block, scale, zp, qdtype, sch.domain);
          ASSERT_EQ(q.scalar_type(), r.qmin < 0 ? at::kChar : at::kByte);
          const at::Tensor xr = lowbit::core::dequantize_affine(q, block, scale, zp, qdtype, sch.domain);
          ASSERT_EQ(xr.scalar_type(), at::kFloat);
          ASSERT_EQ(zp.scalar_type(), int_domain ? at::kInt : at::kFloat);

          const at::Tensor qi = q.to(at::kInt), zpf = zp.to(at::kFloat);
          const float* xp = x.data_ptr<float>();
          const float* xrp = xr.data_ptr<float>();
          const float* sp = scale.data_ptr<float>();
          const float* zpp = zpf.data_ptr<float>();
          const int32_t* qp = qi.data_ptr<int32_t>();
          for (int64_t i = 0; i < x.numel(); ++i) {
            const int64_t b = block_of(i, x.sizes(), block);
            const float s = sp[b], z = zpp[b];
            ASSERT_GE(qp[i], r.qmin);
            ASSERT_LE(qp[i], r.qmax);
            // The documented formulas, per element.
            float qr = int_domain ? std::rint(xp[i] / s) + z : std::rint((xp[i] - (z - s * mid)) / s);
            qr = std::fmin(std::fmax(qr, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
            ASSERT_EQ(qp[i], static_cast<int32_t>(qr)) << "element " << i;
            const float xr_ref = int_domain ? (static_cast<float>(qp[i]) - z) * s : (static_cast<float>(qp[i]) - mid) * s + z;
            ASSERT_EQ(xrp[i], xr_ref) << "element " << i;
            // Every element is inside its block's representable range: error <= scale / 2.
            const double slack = std::ldexp(std::fabs(xp[i]) + std::fabs(z) * (int_domain ? s : 1.0f) + 256.0 * s, -20);
            ASSERT_LE(std::fabs(static_cast<double>(xrp[i]) - xp[i]), s / 2.0 + slack) << "element " << i;
            if (int_domain && xp[i] == 0.0f) ASSERT_EQ(xrp[i], 0.0f) << "0.0 must be exact";
          }
        }
      }
    }
  }
}

TEST(Affine, KnownValues) {
  // Symmetric int4: amax 7.5 -> scale 1, zero point 0; 7.5 clamps to 7, ties to even.
  at::Tensor x = at::empty({1, 8}, at::kFloat);
  const float xs[] = {7.5f, -7.5f, 2.5f, 3.5f, -0.5f, 0.0f, 1.2f, -6.6f};
  std::copy(xs, xs + 8, x.data_ptr<float>());
  const auto [s, zp] = lowbit::core::choose_qparams_affine(x, {1, 8}, "int4");
  EXPECT_EQ(s.item<float>(), 1.0f);
  EXPECT_EQ(zp.item<int32_t>(), 0);
  const at::Tensor q = lowbit::core::quantize_affine(x, {1, 8}, s, zp, "int4");
  const int want[] = {7, -8, 2, 4, 0, 0, 1, -7};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q.data_ptr<int8_t>()[i], want[i]) << i;

  // 0..15 as uint4 (asymmetric: scale 1, zp 0; float domain: zp 8) and as int4 in the float domain.
  const at::Tensor y = at::arange(16, at::kFloat).view({1, 16});
  for (const char* qdtype : {"uint4", "int4"}) {
    for (const char* domain : {"int", "float"}) {
      if (std::string(qdtype) == "int4" && std::string(domain) == "int") continue;
      const auto [s2, zp2] = lowbit::core::choose_qparams_affine(y, {1, 16}, qdtype, "asymmetric", domain);
      EXPECT_EQ(s2.item<float>(), 1.0f);
      const at::Tensor q2 = lowbit::core::quantize_affine(y, {1, 16}, s2, zp2, qdtype, domain);
      const int offset = std::string(qdtype) == "int4" ? -8 : 0;
      for (int i = 0; i < 16; ++i) EXPECT_EQ(q2.to(at::kInt).data_ptr<int32_t>()[i], i + offset) << qdtype << domain;
      EXPECT_TRUE(at::equal(lowbit::core::dequantize_affine(q2, {1, 16}, s2, zp2, qdtype, domain), y))
          << qdtype << " " << domain;
    }
  }
}

TEST(Affine, Errors) {
  const at::Tensor x = sample({8, 64}, 3);
  at::Tensor s, zp;  // not structured bindings: those cannot be captured by lambdas in C++17
  std::tie(s, zp) = lowbit::core::choose_qparams_affine(x, {1, 32}, "int4");
  const at::Tensor q = lowbit::core::quantize_affine(x, {1, 32}, s, zp, "int4");
  for (const char* bad : {"int9", "float4", "uint0"}) {
    expect_error([&] { lowbit::core::choose_qparams_affine(x, {1, 32}, bad); }, "unknown qdtype");
    expect_error([&] { lowbit::core::quantize_affine(x, {1, 32}, s, zp, bad); }, "unknown qdtype");
    expect_error([&] { lowbit::core::dequantize_affine(q, {1, 32}, s, zp, bad); }, "unknown qdtype");
  }
  expect_error([&] { lowbit::core::choose_qparams_affine(x, {1, 48}, "int4"); }, "does not divide input shape");
  expect_error([&] { lowbit::core::choose_qparams_affine(x, {32}, "int4"); }, "must have one entry per input dim");
  expect_error([&] { lowbit::core::quantize_affine(x, {1, 64}, s, zp, "int4"); }, "one value per block");
  expect_error([&] { lowbit::core::choose_qparams_affine(x, {1, 32}, "int4", "symmetric", "float"); },
               "goes with mapping 'asymmetric' only");
  expect_error([&] { lowbit::core::quantize_affine(x.to(at::kInt), {1, 32}, s, zp, "int4"); }, "input dtype");
  expect_error([&] { lowbit::core::dequantize_affine(q, {1, 32}, s, zp, "uint4"); }, "data for qdtype 'uint4' must be");
  // Arguments that used to be accepted and gave wrong answers (issue 14 item 7).
  expect_error([&] { lowbit::core::dequantize_affine(q, {1, 32}, s, zp, "int4", "int", at::kInt); },
               "output_dtype torch.int32 is not supported; allowed: torch.float32");
  expect_error([&] { lowbit::core::choose_qparams_affine(x, {1, 32}, "int4", "symmetric", "int", std::nullopt, at::kInt); },
               "scale_dtype torch.int32 is not supported");
  expect_error([&] { lowbit::core::choose_qparams_affine(x, {1, 32}, "int4", "symmetric", "int", 0.0); },
               "eps must be a positive, finite float32");
  expect_error([&] { lowbit::core::quantize_affine(x, {1, 32}, s, zp.to(at::kFloat), "int4"); },
               "zero_point for zero_point_domain 'int' must be an integer tensor");
  expect_error([&] { lowbit::core::quantize_affine(x, {1, 32}, s.reshape({2, 8}), zp.reshape({2, 8}), "int4"); },
               "does not lay out the blocks");
  at::Tensor bad = q.clone();
  bad.view(-1)[5].fill_(9);  // no int4 code
  expect_error([&] { lowbit::core::dequantize_affine(bad, {1, 32}, s, zp, "int4"); },
               "code 9 at flat index 5 is outside qdtype 'int4' (allowed: -8..7)");
}
