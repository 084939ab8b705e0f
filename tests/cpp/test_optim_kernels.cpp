// The CPU kernels of lowbit::adamw_lowbit_step_ against the scalar reference: the map lookups
// (map_lookup.h) equal core::nearest_map_index, and every vectorized kernel this CPU runs (default,
// AVX2, AVX-512) equals the reference bit for bit on every layout, dtype and block size, with
// partial blocks, odd rank-1 rows, non-finite gradients, several steps and 1 or 2 threads.
// LOWBIT_EXHAUSTIVE_TESTS=1 also checks the lookups on every float in [-1, 1] (a minute or two).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <vector>

#include <lowbit/core/adamw_lowbit.h>
#include <lowbit/core/optimizer_state_formats.h>
#include <lowbit/core/quantization_maps.h>
#include <lowbit/cpu/adamw_lowbit.h>
#include <lowbit/cpu/adamw_lowbit_tables.h>
#include <lowbit/cpu/map_lookup.h>
#include <lowbit/cpu/vec/kernels.h>

namespace {

using lowbit::cpu::vec::KernelSet;
namespace core = lowbit::core;

float float_of(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

struct NamedMap {
  const char* name;
  const core::QuantMap* map;
};

std::vector<NamedMap> all_maps() {
  return {{"tree8 signed", &core::dynamic_tree_map(8, true)},
          {"tree8 unsigned", &core::dynamic_tree_map(8, false)},
          {"tree4 signed", &core::dynamic_tree_map(4, true)},
          {"linear4", &core::linear_map_without_zero_4bit()}};
}

// The floats a lookup must get right: around every map entry and every midpoint (where the
// thresholds are), a random sample of [-1, 1], and the special values.
std::vector<float> probe_values(const core::QuantMap& map) {
  std::vector<float> q;
  auto around = [&](float x) {
    for (int d = -64; d <= 64; ++d) {
      const uint32_t b = bits_of(x);
      if ((d < 0 && (b & 0x7FFFFFFF) < static_cast<uint32_t>(-d))) continue;
      q.push_back(float_of(b + d));
    }
  };
  for (int k = 0; k < map.size; ++k) {
    around(map.values[k]);
    if (k + 1 < map.size) around(0.5f * (map.values[k] + map.values[k + 1]));
  }
  std::mt19937 rng(0);
  std::uniform_int_distribution<uint32_t> any_bits(0, 0x3F800000);
  for (int i = 0; i < 200000; ++i) q.push_back((i % 2 ? -1.0f : 1.0f) * float_of(any_bits(rng)));
  for (float x : {0.0f, -0.0f, 1.0f, -1.0f, 1e-45f, -1e-45f, 1e-38f, 3e-7f, -3e-7f, 2.0f, -2.0f, 1e30f, -1e30f,
                  INFINITY, -INFINITY})
    q.push_back(x);
  return q;
}

TEST(OptimKernels, MapLookupEqualsBinarySearch) {
  for (const auto& [name, map] : all_maps()) {
    const lowbit::cpu::MapLookup lk = lowbit::cpu::make_map_lookup(*map);
    int64_t checked = 0;
    for (float q : probe_values(*map)) {
      ASSERT_EQ(lk.index(q), core::nearest_map_index(map->values, map->size, q)) << name << " q=" << q;
      ++checked;
    }
    std::cout << name << ": shift " << lk.shift << ", " << lk.entries.size() << " entries, " << checked
              << " values checked\n";
  }
}

TEST(OptimKernels, KernelTablesEqualBinarySearch) {
  const auto& tb = lowbit::cpu::adamw::kernel_tables();
  for (float q : probe_values(*tb.map8_m)) ASSERT_EQ(tb.lookup8_m.index(q), core::nearest_map_index(tb.map8_m->values, 256, q)) << q;
  for (float q : probe_values(*tb.map8_v)) ASSERT_EQ(tb.lookup8_v.index(q), core::nearest_map_index(tb.map8_v->values, 256, q)) << q;
  for (float q : probe_values(*tb.map4_m)) ASSERT_EQ(tb.search4_m.index(q), core::nearest_map_index(tb.map4_m->values, 16, q)) << q;
  for (float q : probe_values(*tb.map4_v)) ASSERT_EQ(tb.search4_v.index(q), core::nearest_map_index(tb.map4_v->values, 16, q)) << q;
  for (int b = 0; b < 256; ++b) {
    const float want = static_cast<float>(c10::Float8_e4m3fn(static_cast<uint8_t>(b), c10::Float8_e4m3fn::from_bits()));
    EXPECT_TRUE(bits_of(want) == bits_of(tb.e4m3[b]) || (std::isnan(want) && std::isnan(tb.e4m3[b]))) << b;
  }
}

TEST(OptimKernels, LookupsOnEveryFloatInUnitInterval) {
  if (std::getenv("LOWBIT_EXHAUSTIVE_TESTS") == nullptr) GTEST_SKIP() << "set LOWBIT_EXHAUSTIVE_TESTS=1";
  const auto& tb = lowbit::cpu::adamw::kernel_tables();
  for (uint32_t mag = 0; mag <= 0x3F800000u; ++mag) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const float q = float_of(mag | sign);
      ASSERT_EQ(tb.lookup8_m.index(q), core::nearest_map_index(tb.map8_m->values, 256, q)) << q;
      ASSERT_EQ(tb.lookup8_v.index(q), core::nearest_map_index(tb.map8_v->values, 256, q)) << q;
      ASSERT_EQ(tb.search4_m.index(q), core::nearest_map_index(tb.map4_m->values, 16, q)) << q;
      ASSERT_EQ(tb.search4_v.index(q), core::nearest_map_index(tb.map4_v->values, 16, q)) << q;
    }
  }
}

// ---- the kernels against the reference --------------------------------------------------------

// The vectorized kernel sets this build and CPU run (csrc/cpu/vec_dispatch.cpp).
std::vector<KernelSet> vectorized_kernels() {
  std::vector<KernelSet> k;
  for (KernelSet s : lowbit::cpu::vec::available_kernel_sets())
    if (s != KernelSet::Reference) k.push_back(s);
  for (KernelSet s : {KernelSet::Default, KernelSet::Avx2, KernelSet::Avx512})
    if (std::find(k.begin(), k.end(), s) == k.end())
      std::cout << "kernel set " << lowbit::cpu::vec::kernel_set_name(s) << " not available here\n";
  return k;
}

const char* kernel_name(KernelSet k) { return lowbit::cpu::vec::kernel_set_name(k); }

// cpu::adamw::adamw_lowbit_step with the kernel set `set`, the previous set restored afterwards.
void step_with(at::TensorList params, at::TensorList grads, at::TensorList exp_avg, at::TensorList exp_avg_scale,
               at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale, at::TensorList steps, double lr,
               double beta1, double beta2, double eps, double weight_decay, const std::string& format,
               int64_t block_size, bool stochastic, KernelSet set) {
  struct Restore {
    KernelSet s;
    ~Restore() { lowbit::cpu::vec::set_kernel_set(s); }
  } restore{lowbit::cpu::vec::kernel_set()};
  lowbit::cpu::vec::set_kernel_set(set);
  lowbit::cpu::adamw::adamw_lowbit_step(params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale, steps, lr,
                                        beta1, beta2, eps, weight_decay, format, block_size, stochastic);
}

// Equal bytes, except that NaN equals NaN whatever its payload (fp32 values only; fp8 NaN codes
// are canonical, bf16 NaNs are rounded to one pattern).
::testing::AssertionResult same_values(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shape/dtype";
  if (a.scalar_type() == at::kFloat) {
    const float* x = a.const_data_ptr<float>();
    const float* y = b.const_data_ptr<float>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      const bool same = std::isnan(x[i]) ? std::isnan(y[i]) : bits_of(x[i]) == bits_of(y[i]);
      if (!same) return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs " << y[i];
    }
    return ::testing::AssertionSuccess();
  }
  if (std::memcmp(a.const_data_ptr(), b.const_data_ptr(), a.nbytes()) != 0) {
    const uint8_t* x = static_cast<const uint8_t*>(a.const_data_ptr());
    const uint8_t* y = static_cast<const uint8_t*>(b.const_data_ptr());
    int64_t i = 0;
    while (x[i] == y[i]) ++i;
    return ::testing::AssertionFailure() << "byte " << i << ": " << int(x[i]) << " vs " << int(y[i]);
  }
  return ::testing::AssertionSuccess();
}

struct Case {
  std::string format;
  std::vector<int64_t> shape;
  int64_t block_size;
  at::ScalarType dtype;
  bool stochastic;
};

// Gradients with every kind of value the kernels treat apart: normal, tiny, zero, and (from step 2
// on) a few inf, -inf, NaN and overflowing elements.
at::Tensor make_grad(const Case& c, int step) {
  at::Tensor g = at::randn(c.shape) * (1.0 + step);
  at::Tensor flat = g.view({-1});
  const int64_t n = flat.numel();
  flat.narrow(0, 0, std::min<int64_t>(n, 37)).mul_(1e-30);  // subnormal-ish moments
  if (n > 100) flat.narrow(0, 50, 20).zero_();
  // Whole blocks and rows whose v is subnormal (~1e-44): scales raised to FLT_MIN (normal_scale).
  if (n > 2048) flat.narrow(0, 1024, 1024).mul_(1e-21);
  if (step >= 1 && n > 1000) {
    flat[n / 3] = INFINITY;
    flat[n / 2] = -INFINITY;
    flat[2 * n / 3] = NAN;
    flat[n / 5] = 3e19f;  // its square overflows
  }
  return g.to(c.dtype);
}

void run_case(const Case& c, KernelSet kernel, int threads) {
  SCOPED_TRACE(c.format + " block " + std::to_string(c.block_size) + " " + std::string(c10::toString(c.dtype)) +
               (c.stochastic ? " stochastic" : "") + " kernel " + kernel_name(kernel) + " threads " +
               std::to_string(threads));
  at::manual_seed(0);
  const at::Tensor p0 = at::randn(c.shape).to(c.dtype);
  std::vector<at::Tensor> params = {p0.clone(), p0.clone()};
  std::vector<core::AdamWLowBitState> states = {core::adamw_lowbit_init_state(p0, c.format, c.block_size, 0),
                                                core::adamw_lowbit_init_state(p0, c.format, c.block_size, 0)};
  const int saved = at::get_num_threads();
  at::set_num_threads(threads);
  for (int step = 0; step < 4; ++step) {
    const at::Tensor g = make_grad(c, step);
    for (int k = 0; k < 2; ++k) {
      auto& s = states[k];
      step_with({params[k]}, {g}, {s.exp_avg}, {s.exp_avg_scale}, {s.exp_avg_sq},
                                            {s.exp_avg_sq_scale}, {s.step}, 1e-2, 0.9, 0.99, 1e-8, 0.1, c.format,
                                            c.block_size, c.stochastic, k == 0 ? KernelSet::Reference : kernel);
    }
    ASSERT_TRUE(same_values(params[0], params[1])) << "param, step " << step;
    ASSERT_TRUE(same_values(states[0].exp_avg, states[1].exp_avg)) << "exp_avg, step " << step;
    ASSERT_TRUE(same_values(states[0].exp_avg_scale, states[1].exp_avg_scale)) << "exp_avg_scale, step " << step;
    ASSERT_TRUE(same_values(states[0].exp_avg_sq, states[1].exp_avg_sq)) << "exp_avg_sq, step " << step;
    ASSERT_TRUE(same_values(states[0].exp_avg_sq_scale, states[1].exp_avg_sq_scale)) << "exp_avg_sq_scale, step " << step;
  }
  at::set_num_threads(saved);
}

TEST(OptimKernels, VectorizedEqualsReference) {
  const std::vector<Case> cases = {
      {"8bit", {67, 201}, 256, at::kFloat, false},   // partial last block
      {"8bit", {5000}, 64, at::kFloat, false},
      {"8bit", {300, 256}, 4096, at::kBFloat16, false},
      {"8bit", {131, 77}, 256, at::kBFloat16, true},
      {"fp8", {67, 201}, 256, at::kFloat, false},
      {"fp8", {3001}, 128, at::kBFloat16, true},
      {"4bit", {256, 300}, 128, at::kFloat, false},   // rank-1, even rows
      {"4bit", {257, 301}, 128, at::kFloat, false},   // rank-1, rows starting mid-byte
      {"4bit", {257, 301}, 64, at::kBFloat16, true},
      {"4bit", {67, 201}, 128, at::kFloat, false},    // thin: block-wise second moment
      {"4bit", {10001}, 128, at::kBFloat16, false},   // a vector, odd length
      {"4bit", {4096, 3}, 128, at::kFloat, false},    // rows shorter than a vector
  };
  for (KernelSet kernel : vectorized_kernels()) {
    for (const Case& c : cases) {
      for (int threads : {1, 2}) run_case(c, kernel, threads);
      if (HasFatalFailure()) return;
    }
  }
  // fp32 states (the step op's own layout below min_quantized_size) through the vectorized path
  for (KernelSet kernel : vectorized_kernels()) {
    at::manual_seed(1);
    at::Tensor p = at::randn({999}), q = p.clone();
    auto s1 = core::adamw_lowbit_init_state(p, "8bit", 256), s2 = core::adamw_lowbit_init_state(p, "8bit", 256);
    ASSERT_EQ(s1.exp_avg.scalar_type(), at::kFloat);
    for (int step = 0; step < 3; ++step) {
      const at::Tensor g = make_grad({"8bit", {999}, 256, at::kFloat, false}, step);
      step_with({p}, {g}, {s1.exp_avg}, {s1.exp_avg_scale}, {s1.exp_avg_sq},
                                            {s1.exp_avg_sq_scale}, {s1.step}, 1e-2, 0.9, 0.99, 1e-8, 0.1, "8bit", 256,
                                            false, KernelSet::Reference);
      step_with({q}, {g}, {s2.exp_avg}, {s2.exp_avg_scale}, {s2.exp_avg_sq},
                                            {s2.exp_avg_sq_scale}, {s2.step}, 1e-2, 0.9, 0.99, 1e-8, 0.1, "8bit", 256,
                                            false, kernel);
      ASSERT_TRUE(same_values(p, q)) << kernel_name(kernel);
      ASSERT_TRUE(same_values(s1.exp_avg, s2.exp_avg)) << kernel_name(kernel);
      ASSERT_TRUE(same_values(s1.exp_avg_sq, s2.exp_avg_sq)) << kernel_name(kernel);
    }
  }
}

// The kernels encode rank-1 blocks with max(1 / row, 1 / column) of the raised statistics where
// the format says 1 / rank1_scale(row, column): equal, because 1 / s rounds monotonically
// (0 -> +inf, subnormal -> FLT_MIN first).
TEST(OptimKernels, Rank1ReciprocalIsMaxOfReciprocals) {
  std::vector<float> stats = {0.0f, 1e-45f, 1e-40f, FLT_MIN, 1.5f * FLT_MIN, 1e-20f, 0.3f, 1.0f, 7.0f, 1e30f, FLT_MAX};
  at::manual_seed(5);
  const at::Tensor r = at::rand({2000}).mul_(40).sub_(30).exp2_();  // 2^-30 .. 2^10
  for (int64_t i = 0; i < r.numel(); ++i) stats.push_back(r[i].item<float>());
  for (float a : stats) {
    for (float b : stats) {
      const float want = core::scale_reciprocal(core::rank1_scale(a, b));
      const float got = std::max(core::scale_reciprocal(core::normal_scale(a)), core::scale_reciprocal(core::normal_scale(b)));
      ASSERT_EQ(bits_of(want), bits_of(got)) << a << " " << b;
    }
  }
  // Raised scales keep 1 / scale finite; 0 stays 0 (reciprocal +inf: normalizes to 0).
  EXPECT_EQ(core::normal_scale(1e-40f), FLT_MIN);
  EXPECT_EQ(core::normal_scale(0.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(core::scale_reciprocal(core::map_scale_from_absmax(1e-45f))));
  EXPECT_EQ(core::normalize_by_scale(3.0f, 0.0f), 0.0f);
  EXPECT_EQ(core::normalize_by_scale(NAN, 2.0f), 0.0f);
}

// Every code decodes as the reference decodes it: states holding each code (m: all 256 or 16; v:
// every non-negative one) with nonzero scales, one step; a decoded value 1 ulp off would show in
// the new parameter.
TEST(OptimKernels, EveryCodeDecodes) {
  for (const std::string format : {"8bit", "fp8", "4bit"}) {
    for (KernelSet kernel : vectorized_kernels()) {
      at::manual_seed(3);
      const at::Tensor p0 = at::randn({64, 256});
      std::vector<at::Tensor> ps = {p0.clone(), p0.clone()};
      std::vector<core::AdamWLowBitState> ss;
      for (int k = 0; k < 2; ++k) {
        auto s = core::adamw_lowbit_init_state(p0, format, 128, 0);
        at::Tensor codes = at::arange(s.exp_avg.numel(), at::kLong).remainder(256).to(at::kByte);
        at::Tensor vcodes = format == "fp8" ? at::arange(s.exp_avg_sq.numel(), at::kLong).remainder(0x7F).to(at::kByte)
                                            : codes.narrow(0, 0, s.exp_avg_sq.numel()).clone();
        s.exp_avg.view(at::kByte).copy_(codes);
        s.exp_avg_sq.view(at::kByte).copy_(vcodes);
        s.exp_avg_scale.fill_(0.37f);
        s.exp_avg_sq_scale.fill_(format == "fp8" ? 1e-3f : 0.21f);
        ss.push_back(s);
      }
      const at::Tensor g = at::randn({64, 256});
      for (int k = 0; k < 2; ++k)
        step_with({ps[k]}, {g}, {ss[k].exp_avg}, {ss[k].exp_avg_scale}, {ss[k].exp_avg_sq},
                                              {ss[k].exp_avg_sq_scale}, {ss[k].step}, 1e-2, 0.9, 0.99, 1e-8, 0.1,
                                              format, 128, false, k == 0 ? KernelSet::Reference : kernel);
      EXPECT_TRUE(same_values(ps[0], ps[1])) << format << " " << kernel_name(kernel);
      EXPECT_TRUE(same_values(ss[0].exp_avg, ss[1].exp_avg)) << format << " " << kernel_name(kernel);
      EXPECT_TRUE(same_values(ss[0].exp_avg_sq, ss[1].exp_avg_sq)) << format << " " << kernel_name(kernel);
    }
  }
}

// With beta1 = 0 a fresh state's new m is the gradient, and a block whose largest magnitude is
// 448 (fp8) or 1 (8-bit) has scale 1, so the encoder sees the gradient itself: this drives it
// over every rounding boundary of e4m3 and of the signed 8-bit map.
TEST(OptimKernels, EncodersAtEveryBoundary) {
  const auto& tb = lowbit::cpu::adamw::kernel_tables();
  for (const std::string format : {"fp8", "8bit"}) {
    std::vector<float> values;
    const float top = format == "fp8" ? 448.0f : 1.0f;
    std::vector<float> points;
    if (format == "fp8") {
      for (int b = 0; b < 256; ++b)
        if (!std::isnan(tb.e4m3[b])) points.push_back(tb.e4m3[b]);
    } else {
      for (int k = 0; k < 256; ++k) points.push_back(tb.map8_m->values[k]);
    }
    std::sort(points.begin(), points.end());
    for (size_t k = 0; k + 1 < points.size(); ++k) {
      for (float x : {points[k], 0.5f * (points[k] + points[k + 1])})
        for (int d = -3; d <= 3; ++d)
          if (x != 0.0f) values.push_back(float_of(bits_of(x) + d));
    }
    const int64_t block = 4096;
    const int64_t blocks = (static_cast<int64_t>(values.size()) + block - 2) / (block - 1);
    at::Tensor g = at::zeros({blocks * block});
    float* gp = g.data_ptr<float>();
    for (int64_t b = 0; b < blocks; ++b) gp[b * block] = top;  // each block's absmax
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t b = static_cast<int64_t>(i) / (block - 1), k = static_cast<int64_t>(i) % (block - 1);
      gp[b * block + 1 + k] = std::fmax(std::fmin(values[i], top), -top);
    }
    for (KernelSet kernel : vectorized_kernels()) {
      at::Tensor p1 = at::zeros_like(g), p2 = at::zeros_like(g);
      auto s1 = core::adamw_lowbit_init_state(p1, format, block, 0), s2 = core::adamw_lowbit_init_state(p2, format, block, 0);
      for (auto [p, s, k] : {std::tuple{p1, s1, KernelSet::Reference}, std::tuple{p2, s2, kernel}})
        step_with({p}, {g}, {s.exp_avg}, {s.exp_avg_scale}, {s.exp_avg_sq},
                                              {s.exp_avg_sq_scale}, {s.step}, 1e-3, 0.0, 0.0, 1e-8, 0.0, format, block,
                                              false, k);
      EXPECT_TRUE(same_values(s1.exp_avg_scale, at::full_like(s1.exp_avg_scale, format == "fp8" ? 1.0f : 1.0f)))
          << format;
      EXPECT_TRUE(same_values(s1.exp_avg, s2.exp_avg)) << format << " " << kernel_name(kernel);
      EXPECT_TRUE(same_values(s1.exp_avg_sq, s2.exp_avg_sq)) << format << " " << kernel_name(kernel);
    }
  }
}

}  // namespace
