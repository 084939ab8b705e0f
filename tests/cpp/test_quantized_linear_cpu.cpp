// The fast CPU kernels of the quantized linear ops (csrc/cpu/quantized_linear_cpu.cpp, registered
// at the CPU key) against their reference kernels (csrc/cpu/quantized_linear_reference.cpp) on
// the same inputs, for every kernel set this machine runs, every weight-only format, input dtype,
// odd shape (K not a multiple of the vector width; M = 1, 2, 7, 8 on the GEMV path, 9, 17, 32, 33,
// 64, 100 on the GEMM path (one or two vectors of x per block, one or two passes of 64 rows), 257
// on the tiled path; 3-D inputs) and bias None / present:
//   - the decoded weights are the reference's bit for bit: a one-hot input picks one weight per
//     output, so no summation order is involved, and the outputs must be equal;
//   - random inputs agree within the float32-order bound 2 K 2^-24 sum_k |x_k w_k| (plus the
//     output's last rounding, which may fall either way);
//   - int8_dynamic_activation_int8 is bit-equal (an exact int32 GEMM, the reference's epilogue);
//   - int8_dynamic_activation_int4 agrees within that bound for its fake-quantized x.
#include <gtest/gtest.h>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/Context.h>
#include <ATen/ops/abs.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/eye.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/isnan.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/nan_to_num.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>

#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <lowbit/cpu/quantized_linear_reference.h>
#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/dispatch.h>

namespace {

using lowbit::cpu::vec::KernelSet;
using OptTensor = std::optional<at::Tensor>;
using Linear = std::function<at::Tensor(const at::Tensor&, const OptTensor&)>;

template <typename F>
auto with_kernels(KernelSet s, F&& f) {
  const KernelSet before = lowbit::cpu::vec::kernel_set();
  lowbit::cpu::vec::set_kernel_set(s);
  struct Restore {
    KernelSet s;
    ~Restore() { lowbit::cpu::vec::set_kernel_set(s); }
  } restore{before};
  return f();
}

// The kernel sets with quantized-linear kernels (AVX2, AVX512 where this CPU runs them).
std::vector<KernelSet> qlinear_sets() {
  std::vector<KernelSet> out;
  for (KernelSet s : lowbit::cpu::vec::available_kernel_sets()) {
    if (s == KernelSet::Reference) continue;
    if (with_kernels(s, [] { return lowbit::cpu::vec::kernels()->qlinear_gemv != nullptr; })) out.push_back(s);
  }
  return out;
}

// One weight-only format: the op through the dispatcher and the reference function, bound to
// the same packed weight.
struct Case {
  std::string name;
  int64_t n, k;
  Linear op, ref;
};

at::Tensor randbytes(int64_t rows, int64_t cols) {
  return at::randint(0, 256, {rows, cols}, at::kByte);
}

Case int8wo(int64_t n, int64_t k) {
  const at::Tensor w = at::randint(-128, 128, {n, k}, at::kChar);
  const at::Tensor s = at::rand({n}) * 0.02 + 0.001;
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::int8_weight_only_linear");
  return {"int8wo", n, k, [=](const at::Tensor& x, const OptTensor& b) { return op.call(x, w, s, b); },
          [=](const at::Tensor& x, const OptTensor& b) { return lowbit::cpu::int8_weight_only_linear_ref(x, w, s, b); }};
}

Case float8wo(int64_t n, int64_t k, at::ScalarType t) {
  at::Tensor bytes = randbytes(n, k);
  // No NaN or inf codes here (they are tested apart): a one-hot input's zeros times inf are NaN.
  const int special = t == at::kFloat8_e4m3fn ? 0x7f : 0x7c;
  bytes = at::where((bytes & special) == special, at::zeros_like(bytes), bytes);
  const at::Tensor w = bytes.view(t);
  const at::Tensor s = at::rand({n, 1}) * 0.02 + 0.001;
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::float8_weight_only_linear");
  return {std::string("float8wo ") + c10::toString(t), n, k,
          [=](const at::Tensor& x, const OptTensor& b) { return op.call(x, w, s, b); },
          [=](const at::Tensor& x, const OptTensor& b) { return lowbit::cpu::float8_weight_only_linear_ref(x, w, s, b); }};
}

Case fpx(int64_t n, int64_t k, int64_t e, int64_t m) {
  const int64_t bits = 1 + e + m;
  const at::Tensor p = randbytes(n, k * bits / 8);
  const at::Tensor s = at::rand({n}) * 0.02 + 0.001;
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                            const OptTensor&)>("lowbit::fpx_weight_only_linear");
  return {"fp" + std::to_string(bits) + "_e" + std::to_string(e) + "m" + std::to_string(m), n, k,
          [=](const at::Tensor& x, const OptTensor& b) { return op.call(x, p, s, e, m, b); },
          [=](const at::Tensor& x, const OptTensor& b) { return lowbit::cpu::fpx_weight_only_linear_ref(x, p, s, e, m, b); }};
}

Case uintx(int64_t n, int64_t k, int64_t bits, int64_t g) {
  const at::Tensor p = randbytes(n, k * bits / 8);
  const at::Tensor s = at::rand({n, k / g}) * 0.02 + 0.001;
  const at::Tensor z = at::randint(0, int64_t{1} << bits, {n, k / g}, at::kInt);
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                            int64_t, int64_t, const OptTensor&)>("lowbit::uintx_weight_only_linear");
  return {"uint" + std::to_string(bits) + "wo-" + std::to_string(g), n, k,
          [=](const at::Tensor& x, const OptTensor& b) { return op.call(x, p, s, z, bits, g, b); },
          [=](const at::Tensor& x, const OptTensor& b) {
            return lowbit::cpu::uintx_weight_only_linear_ref(x, p, s, z, bits, g, b);
          }};
}

// Every format on shapes that fit it (packed rows start on a byte; uintx groups divide K).
std::vector<Case> cases() {
  std::vector<Case> c;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 31}, {17, 33}, {67, 100}, {9, 257}}) {
    c.push_back(int8wo(n, k));
    c.push_back(float8wo(n, k, at::kFloat8_e4m3fn));
    c.push_back(float8wo(n, k, at::kFloat8_e5m2));
  }
  for (auto [e, m] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 1}, {3, 2}, {2, 3}, {4, 2}, {2, 2}}) {
    c.push_back(fpx(7, 8, e, m));
    c.push_back(fpx(33, 72, e, m));
    c.push_back(fpx(5, 264, e, m));
  }
  for (int64_t bits = 1; bits <= 7; ++bits) {
    c.push_back(uintx(7, 64, bits, 32));
    c.push_back(uintx(33, 192, bits, 64));
    c.push_back(uintx(5, 96, bits, 16));  // groups of 16: the reference path
  }
  // K a multiple of 32: float32 rows of x go to the GEMV without a padded copy.
  c.push_back(int8wo(20, 64));
  c.push_back(float8wo(9, 96, at::kFloat8_e4m3fn));
  c.push_back(float8wo(9, 96, at::kFloat8_e5m2));
  // Enough rows for the GEMM to split them between threads (>= 64 KiB of weight per task): the
  // split falls on a multiple of its row blocks.
  c.push_back(int8wo(2100, 40));
  // Groups longer than the GEMM's K-slice (128 codes): a slice starts inside a group.
  for (int64_t bits : {3, 4, 6}) {
    c.push_back(uintx(13, 1024, bits, 512));
    c.push_back(uintx(14, 768, bits, 256));
  }
  return c;
}

// got == want within 2 K 2^-24 |x| |w| plus the output dtype's roundings: the result's (the bias
// add's), and up to two before it at the magnitude of the output without the bias (`unbiased`):
// the GEMM output's cast, then int8wo's scale multiply (a bias that cancels the output leaves those
// larger than the result's ulp). NaN where want is.
void expect_close(const at::Tensor& got, const at::Tensor& want, const at::Tensor& mag, int64_t k,
                  const std::string& what, const OptTensor& unbiased = std::nullopt) {
  ASSERT_EQ(got.scalar_type(), want.scalar_type()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  ASSERT_TRUE(at::equal(at::isnan(g), at::isnan(w))) << what;
  const at::ScalarType t = want.scalar_type();
  const double unit = t == at::kBFloat16 ? 1.0 / 128 : t == at::kHalf ? 1.0 / 1024 : 1.0 / (1 << 22);
  const at::Tensor tol = mag.to(at::kDouble) * (2.0 * static_cast<double>(k) / (1 << 24)) * (1 + unit) +
                         w.abs() * unit + (unbiased ? unbiased->to(at::kDouble).abs() * (2 * unit) : at::zeros_like(w)) +
                         1e-30;
  const at::Tensor err = at::where(at::isnan(w), at::zeros_like(w), (g - w).abs());
  const at::Tensor over = err > tol;
  ASSERT_FALSE(over.any().item<bool>()) << what << ": max error " << err.max().item<double>() << ", tolerance there "
                                        << at::where(over, tol, at::zeros_like(tol)).max().item<double>();
}

TEST(QuantizedLinearCpu, WeightOnlyMatchesReference) {
  const auto sets = qlinear_sets();
  if (sets.empty()) GTEST_SKIP() << "this CPU runs no kernel set with quantized-linear kernels";
  at::manual_seed(0);
  for (const Case& c : cases()) {
    const at::Tensor bias = at::randn({c.n});
    for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
      // The reference's weights, (K, N) in the output dtype: one-hot rows pick them out.
      const at::Tensor eye = at::eye(c.k).to(t);
      const at::Tensor w_t = c.ref(eye, std::nullopt);
      for (KernelSet s : sets) {
        const std::string tag = c.name + " " + c10::toString(t) + " " + lowbit::cpu::vec::kernel_set_name(s);
        with_kernels(s, [&] {
          ASSERT_TRUE(at::equal(c.op(eye, std::nullopt), w_t)) << tag << ": decoded weights differ";
          for (std::vector<int64_t> shape : {std::vector<int64_t>{1, c.k}, {2, c.k}, {7, c.k}, {8, c.k}, {9, c.k},
                                             {17, c.k}, {32, c.k}, {33, c.k}, {64, c.k}, {100, c.k}, {257, c.k},
                                             {2, 3, c.k}}) {
            const at::Tensor x = at::randn(shape).to(t);
            const at::Tensor mag = at::matmul(x.to(at::kFloat).abs(), w_t.to(at::kFloat).abs());
            for (const OptTensor& b : {OptTensor(), OptTensor(bias)}) {
              const std::string what = tag + " M=" + std::to_string(x.numel() / c.k) + (b ? " bias" : "");
              const OptTensor unbiased = c.ref(x, std::nullopt);
              expect_close(c.op(x, b), c.ref(x, b), mag, c.k, what, unbiased);
            }
          }
        });
      }
    }
  }
}

// int8_dynamic_activation_int4: both sides fake-quantize x with the same function, then the
// kernels run the weight-only paths on the 4-bit weight in float32: within the float32-order
// bound of |x_fq| |w| for every path (GEMV, GEMM, tiles) and kernel set.
TEST(QuantizedLinearCpu, Int8DynamicInt4MatchesReference) {
  const auto sets = qlinear_sets();
  if (sets.empty()) GTEST_SKIP() << "this CPU runs no kernel set with quantized-linear kernels";
  at::manual_seed(2);
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                            int64_t, const OptTensor&)>("lowbit::int8_dynamic_activation_int4_linear");
  for (auto [n, k, g] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{7, 64, 32}, {33, 192, 64}, {14, 768, 256}}) {
    const at::Tensor p = randbytes(n, k / 2);
    const at::Tensor s = at::rand({n, k / g}) * 0.02 + 0.001;
    const at::Tensor z = at::randint(0, 16, {n, k / g}, at::kInt);
    const at::Tensor bias = at::randn({n});
    // The dequantized weight (K, N) in float32, as int4dq's reference computes with it.
    const at::Tensor w_t = lowbit::cpu::uintx_weight_only_linear_ref(at::eye(k), p, s, z, 4, g, std::nullopt);
    for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
      for (KernelSet set : sets) {
        with_kernels(set, [&] {
          for (int64_t m : {1, 5, 8, 9, 32, 100, 257}) {
            const at::Tensor x = at::randn({m, k}).to(t);
            const at::Tensor mag = at::matmul(lowbit::cpu::fake_quantize_int8_per_token(x).abs(), w_t.abs());
            for (const OptTensor& b : {OptTensor(), OptTensor(bias)}) {
              const std::string what = "int4dq-" + std::to_string(g) + " N=" + std::to_string(n) + " K=" +
                                       std::to_string(k) + " M=" + std::to_string(m) + " " + c10::toString(t) + " " +
                                       lowbit::cpu::vec::kernel_set_name(set) + (b ? " bias" : "");
              expect_close(op.call(x, p, s, z, g, b),
                           lowbit::cpu::int8_dynamic_activation_int4_linear_ref(x, p, s, z, g, b), mag, k, what);
            }
          }
        });
      }
    }
  }
}

TEST(QuantizedLinearCpu, NonFiniteInputsAndWeights) {
  at::manual_seed(1);
  std::vector<Case> cs{int8wo(9, 70), fpx(9, 72, 3, 2), uintx(9, 64, 4, 32)};
  // float8 weights with NaN codes: NaN rows out, as the reference gives.
  at::Tensor bytes = randbytes(9, 70);
  bytes.select(0, 3).select(0, 5).fill_(0x7f);
  const at::Tensor w8 = bytes.view(at::kFloat8_e4m3fn);
  const at::Tensor s8 = at::rand({9, 1});
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::float8_weight_only_linear");
  cs.push_back({"float8wo nan", 9, 70, [=](const at::Tensor& x, const OptTensor& b) { return op.call(x, w8, s8, b); },
                [=](const at::Tensor& x, const OptTensor& b) {
                  return lowbit::cpu::float8_weight_only_linear_ref(x, w8, s8, b);
                }});
  for (const Case& c : cs) {
    for (int64_t m : {1, 33, 100}) {
      at::Tensor x = at::randn({m, c.k});
      x.select(0, 0).select(0, 3).fill_(std::numeric_limits<float>::quiet_NaN());
      if (m > 1) x.select(0, 1).select(0, 2).fill_(std::numeric_limits<float>::infinity());
      const at::Tensor want = c.ref(x, std::nullopt);
      for (KernelSet s : qlinear_sets()) {
        with_kernels(s, [&] {
          const at::Tensor got = c.op(x, std::nullopt);
          ASSERT_TRUE(at::equal(at::isnan(got), at::isnan(want))) << c.name << " M=" << m;
          const at::Tensor fin = at::isfinite(want);
          ASSERT_TRUE(at::allclose(at::where(fin, got, at::zeros_like(got)), at::where(fin, want, at::zeros_like(want)),
                                   1e-4, 1e-4))
              << c.name << " M=" << m;
          ASSERT_TRUE(at::equal(at::where(fin, at::zeros_like(got), got).nan_to_num(0.0),
                                at::where(fin, at::zeros_like(want), want).nan_to_num(0.0)))
              << c.name << " M=" << m << ": infinities differ";
        });
      }
    }
  }
}

TEST(QuantizedLinearCpu, Int8DynamicIsBitEqual) {
  at::manual_seed(2);
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::int8_dynamic_activation_int8_linear");
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 63}, {17, 65}, {67, 130}, {9, 1000}}) {
    const at::Tensor w = at::randint(-128, 128, {n, k}, at::kChar);
    const at::Tensor s = at::rand({n}) * 0.02 + 0.001;
    const at::Tensor bias = at::randn({n});
    for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
      for (std::vector<int64_t> shape : {std::vector<int64_t>{1, k}, {3, k}, {7, k}, {33, k}, {2, 3, k}}) {
        at::Tensor x = at::randn(shape).to(t);
        if (shape[0] == 7) {  // a NaN row and a row with infinities
          x.select(0, 2).select(0, 0).fill_(std::numeric_limits<float>::quiet_NaN());
          x.select(0, 4).select(0, k - 1).fill_(-std::numeric_limits<float>::infinity());
        }
        for (const OptTensor& b : {OptTensor(), OptTensor(bias)}) {
          const at::Tensor want = lowbit::cpu::int8_dynamic_activation_int8_linear_ref(x, w, s, b);
          for (KernelSet set : qlinear_sets()) {
            const at::Tensor got = with_kernels(set, [&] { return op.call(x, w, s, b); });
            const at::Tensor gz = got.nan_to_num(0.0), wz = want.nan_to_num(0.0);
            ASSERT_TRUE(at::equal(at::isnan(got), at::isnan(want)) && at::equal(gz, wz))
                << "int8dq N=" << n << " K=" << k << " " << c10::toString(t) << " "
                << lowbit::cpu::vec::kernel_set_name(set);
          }
        }
      }
    }
  }
}

TEST(QuantizedLinearCpu, Float8DynamicMatchesReference) {
  at::manual_seed(4);
  auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                            c10::string_view, const OptTensor&)>(
      "lowbit::float8_dynamic_activation_linear");
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{5, 31}, {17, 100}, {40, 257}}) {
    at::Tensor bytes = randbytes(n, k);
    bytes = at::where((bytes & 0x7f) == 0x7f, at::zeros_like(bytes), bytes);
    const at::Tensor w = bytes.view(at::kFloat8_e4m3fn);
    const at::Tensor bias = at::randn({n});
    for (const char* gran : {"tensor", "row"}) {
      const at::Tensor ws = std::string(gran) == "row" ? at::rand({n, 1}) * 0.01 + 0.001 : at::rand({1}) * 0.01;
      for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
        for (int64_t m : {1, 7, 33, 70}) {
          const at::Tensor x = at::randn({m, k}).to(t);
          const at::Tensor mag = at::matmul(x.to(at::kFloat).abs(), (w.to(at::kFloat) * ws.reshape({-1, 1})).abs().t());
          for (const OptTensor& b : {OptTensor(), OptTensor(bias)}) {
            const at::Tensor want = lowbit::cpu::float8_dynamic_activation_linear_ref(x, w, ws, gran, b);
            for (KernelSet s : qlinear_sets()) {
              const at::Tensor got = with_kernels(s, [&] { return op.call(x, w, ws, gran, b); });
              // x's float8 rounding is the same on both sides; its relative error bounds mag's.
              const OptTensor unbiased = lowbit::cpu::float8_dynamic_activation_linear_ref(x, w, ws, gran, std::nullopt);
              expect_close(got, want, mag * 1.1, k, std::string("float8dq ") + gran + " M=" + std::to_string(m),
                           unbiased);
            }
          }
        }
      }
    }
  }
}

// Every e4m3 / e5m2 code decodes to the reference's value, also when the thread flushes denormals
// (torch.set_flush_denormal(True): MXCSR's DAZ would zero the AVX-512 e4m3 route's denormal bit
// patterns, so the kernel checks it). Float32 input (unscaled decode) and bf16 (scaled, rounded);
// M = 1 (GEMV), 256 (GEMM).
TEST(QuantizedLinearCpu, Float8EveryCodeWithAndWithoutFlushDenormal) {
  at::Tensor codes = at::arange(256, at::kInt).to(at::kByte).reshape({1, 256}).repeat({4, 1});
  for (at::ScalarType f8 : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
    const int special = f8 == at::kFloat8_e4m3fn ? 0x7f : 0x7c;  // NaN (and inf): zeros times them are NaN
    const at::Tensor bytes = at::where((codes & special) == special, at::zeros_like(codes), codes);
    const at::Tensor w = bytes.view(f8);
    const at::Tensor s = at::rand({4, 1}) + 0.5;
    auto op = lowbit::ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                              const OptTensor&)>("lowbit::float8_weight_only_linear");
    for (bool flush : {false, true}) {
      at::globalContext().setFlushDenormal(flush);
      for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
        const at::Tensor eye = at::eye(256).to(t);
        const at::Tensor want = lowbit::cpu::float8_weight_only_linear_ref(eye, w, s, std::nullopt);
        for (KernelSet set : qlinear_sets()) {
          with_kernels(set, [&] {
            EXPECT_TRUE(at::equal(op.call(eye, w, s, std::nullopt), want))
                << c10::toString(f8) << " " << c10::toString(t) << " flush " << flush << " M=256";
            EXPECT_TRUE(at::equal(op.call(eye.narrow(0, 3, 1), w, s, std::nullopt), want.narrow(0, 3, 1)))
                << c10::toString(f8) << " " << c10::toString(t) << " flush " << flush << " M=1";
          });
        }
      }
    }
    at::globalContext().setFlushDenormal(false);
  }
}

TEST(QuantizedLinearCpu, ReferenceSetRunsTheReference) {
  at::manual_seed(3);
  const Case c = fpx(13, 40, 2, 1);
  const at::Tensor x = at::randn({3, 40});
  const at::Tensor got = with_kernels(KernelSet::Reference, [&] { return c.op(x, std::nullopt); });
  EXPECT_TRUE(at::equal(got, c.ref(x, std::nullopt)));
}

}  // namespace
