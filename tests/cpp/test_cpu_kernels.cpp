// The vectorized CPU kernels (csrc/cpu/vec, one build per instruction set) against the scalar
// reference kernels, bit for bit, for every kernel set this machine runs (default, avx2, avx512),
// on shapes that cover the vector tails, the chunking and both parallel strategies, and on edge
// values (zeros, -0.0, ±inf, NaN, float32 subnormals, huge values, rounding ties).
#include <gtest/gtest.h>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/isnan.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <lowbit/core/affine.h>
#include <lowbit/core/bit_packing.h>
#include <lowbit/core/fake_quantize.h>
#include <lowbit/core/float8_cast.h>
#include <lowbit/core/float8_scale.h>
#include <lowbit/core/fpx.h>
#include <lowbit/core/scaled_mm.h>
#include <lowbit/cpu/vec/kernels.h>

namespace {

using lowbit::cpu::vec::KernelSet;

// Runs `f` with the kernel set `s`, restoring the previous set afterwards.
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

std::vector<KernelSet> vectorized_sets() {
  std::vector<KernelSet> out;
  for (KernelSet s : lowbit::cpu::vec::available_kernel_sets()) {
    if (s != KernelSet::Reference) out.push_back(s);
  }
  return out;
}

// Same dtype, shape and bits; NaN only where the reference has NaN (payloads may differ).
void expect_same(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.scalar_type(), want.scalar_type()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  if (at::isFloatingType(want.scalar_type()) && want.element_size() > 1) {
    const at::Tensor nan_g = at::isnan(got), nan_w = at::isnan(want);
    ASSERT_TRUE(at::equal(nan_g, nan_w)) << what << ": NaN at different places";
    const at::Tensor g = at::where(nan_g, at::zeros_like(got), got), w = at::where(nan_w, at::zeros_like(want), want);
    const at::ScalarType bits = want.element_size() == 4 ? at::kInt : at::kShort;
    ASSERT_TRUE(at::equal(g.reshape(-1).view(bits), w.reshape(-1).view(bits))) << what;
  } else {
    ASSERT_TRUE(at::equal(got.reshape(-1).view(at::kByte), want.reshape(-1).view(at::kByte))) << what;
  }
}

// Random values spread over 2^-20..2^20 with edge values sprinkled in.
at::Tensor sample(at::IntArrayRef shape, at::ScalarType dtype, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = at::randn(shape) * at::exp2(at::randint(-20, 21, shape).to(at::kFloat));
  at::Tensor flat = x.view(-1);
  const float edges[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                         std::nanf(""), 1e-40f, -3e38f, 0.5f, 1.5f, 2.5f, 448.0f, 464.0f};
  for (int64_t i = 0; i < flat.numel(); i += 97) flat[i].fill_(edges[(i / 97) % 12]);
  return x.to(dtype);
}

const std::vector<std::vector<int64_t>> kShapes = {{37, 129}, {3, 17, 65}, {1, 1}, {0, 5}, {5, 0}, {257, 1031},
                                                   {2, 40000}};

}  // namespace

TEST(CpuKernels, SetsAreListedAndSwitchable) {
  const auto sets = lowbit::cpu::vec::available_kernel_sets();
  ASSERT_FALSE(sets.empty());
  EXPECT_EQ(sets.front(), KernelSet::Reference);
  EXPECT_GE(sets.size(), 2u) << "no vectorized kernel set is available";
  for (KernelSet s : sets) {
    with_kernels(s, [&] {
      EXPECT_EQ(lowbit::cpu::vec::kernel_set(), s);
      EXPECT_EQ(lowbit::cpu::vec::kernels() == nullptr, s == KernelSet::Reference);
      return 0;
    });
  }
}

TEST(CpuKernels, Float8CastMatchesReference) {
  for (KernelSet set : vectorized_sets()) {
    for (const auto& shape : kShapes) {
      for (at::ScalarType in : {at::kFloat, at::kBFloat16, at::kHalf}) {
        const at::Tensor x = sample(shape, in, 7);
        for (at::ScalarType fp8 : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
          for (const char* g : {"tensor", "row", "column"}) {
            for (bool pow2 : {false, true}) {
              const std::string what = std::string(lowbit::cpu::vec::kernel_set_name(set)) + " " + g + " " +
                                       c10::toString(in) + "->" + c10::toString(fp8) + " shape " +
                                       c10::str(at::IntArrayRef(shape)) + (pow2 ? " pow2" : "");
              const auto ref = with_kernels(KernelSet::Reference, [&] { return lowbit::core::cast_to_float8(x, fp8, g, pow2); });
              const auto got = with_kernels(set, [&] { return lowbit::core::cast_to_float8(x, fp8, g, pow2); });
              expect_same(std::get<0>(got), std::get<0>(ref), what + " data");
              expect_same(std::get<1>(got), std::get<1>(ref), what + " scale");
            }
          }
        }
      }
    }
  }
}

// float8_amax and cast_to_float8_with_scale (FSDP's float8 all-gather steps) as their reference
// computes them, non-finite values included (sample's), and together equal to the tensorwise cast.
TEST(CpuKernels, Float8ScaleStepsMatchReference) {
  for (KernelSet set : vectorized_sets()) {
    for (const auto& shape : kShapes) {
      for (at::ScalarType in : {at::kFloat, at::kBFloat16, at::kHalf}) {
        const at::Tensor x = sample(shape, in, 9);
        const std::string what = std::string(lowbit::cpu::vec::kernel_set_name(set)) + " " + c10::toString(in) +
                                 " shape " + c10::str(at::IntArrayRef(shape));
        auto amax = [&](KernelSet s) { return with_kernels(s, [&] { return lowbit::core::float8_amax({x, x * 3}); }); };
        const at::Tensor ref_amax = amax(KernelSet::Reference);
        expect_same(amax(set), ref_amax, what + " amax");
        for (at::ScalarType fp8 : {at::kFloat8_e4m3fn, at::kFloat8_e5m2}) {
          const at::Tensor scale = lowbit::core::float8_amax_to_scale(ref_amax.narrow(0, 0, 1), fp8);
          auto cast = [&](KernelSet s) {
            return with_kernels(s, [&] { return lowbit::core::cast_to_float8_with_scale(x, scale, fp8); });
          };
          const at::Tensor got = cast(set);
          expect_same(got, cast(KernelSet::Reference), what + " " + c10::toString(fp8) + " cast");
          expect_same(got, std::get<0>(with_kernels(set, [&] { return lowbit::core::cast_to_float8(x, fp8, "tensor"); })),
                      what + " " + c10::toString(fp8) + " = tensorwise cast_to_float8");
        }
      }
    }
  }
}

TEST(CpuKernels, FpxMatchesReference) {
  for (KernelSet set : vectorized_sets()) {
    for (auto [e, m] : std::vector<std::pair<int, int>>{{3, 2}, {2, 3}, {2, 1}, {1, 0}, {5, 1}, {1, 6}, {7, 0}, {3, 4}}) {
      for (at::ScalarType in : {at::kFloat, at::kBFloat16, at::kHalf}) {
        const at::Tensor x = sample({33, 257}, in, 11) * 0.25;
        const std::string what = std::string(lowbit::cpu::vec::kernel_set_name(set)) + " e" + std::to_string(e) + "m" +
                                 std::to_string(m) + " " + c10::toString(in);
        const at::Tensor ref = with_kernels(KernelSet::Reference, [&] { return lowbit::core::fpx_encode(x, e, m); });
        const at::Tensor got = with_kernels(set, [&] { return lowbit::core::fpx_encode(x, e, m); });
        expect_same(got, ref, what + " encode");
        for (at::ScalarType out : {at::kFloat, at::kBFloat16, at::kHalf}) {
          expect_same(with_kernels(set, [&] { return lowbit::core::fpx_decode(ref, e, m, out); }),
                      with_kernels(KernelSet::Reference, [&] { return lowbit::core::fpx_decode(ref, e, m, out); }),
                      what + " decode to " + c10::toString(out));
        }
      }
    }
  }
}

TEST(CpuKernels, AffineMatchesReference) {
  struct Case {
    std::vector<int64_t> shape, block;
  };
  // Per row, per group, per tensor, 3-D groups, many short runs, few long runs (parallel inside a
  // run), empty, 0-dim, and a layout that is not contiguous runs (the reference path for both).
  const std::vector<Case> cases = {{{37, 128}, {1, 128}}, {{37, 128}, {1, 32}}, {{37, 128}, {37, 128}},
                                   {{4, 6, 96}, {1, 1, 32}}, {{4, 6, 96}, {1, 6, 96}}, {{3, 40000}, {1, 40000}},
                                   {{2, 40000}, {2, 40000}}, {{0, 16}, {1, 16}}, {{}, {}}, {{9, 12}, {3, 4}}};
  const std::pair<const char*, const char*> schemes[] = {{"symmetric", "int"}, {"asymmetric", "int"},
                                                         {"asymmetric", "float"}};
  const auto sets = vectorized_sets();
  for (const Case& c : cases) {
    for (at::ScalarType in : {at::kFloat, at::kBFloat16, at::kHalf}) {
      const at::Tensor x = sample(c.shape, in, 5);
      for (const char* qdtype : {"int8", "uint4", "int3"}) {
        for (auto [mapping, domain] : schemes) {
          const std::string what = std::string(qdtype) + " " + mapping + "/" + domain + " " + c10::toString(in) +
                                   " shape " + c10::str(at::IntArrayRef(c.shape)) + " block " +
                                   c10::str(at::IntArrayRef(c.block));
          auto choose = [&] { return lowbit::core::choose_qparams_affine(x, c.block, qdtype, mapping, domain); };
          const auto ref_qp = with_kernels(KernelSet::Reference, choose);
          const auto& [s, zp] = ref_qp;
          auto quantize = [&] { return lowbit::core::quantize_affine(x, c.block, s, zp, qdtype, domain); };
          const at::Tensor q = with_kernels(KernelSet::Reference, quantize);
          auto fake = [&] { return lowbit::core::fake_quantize_affine(x, c.block, qdtype, mapping, domain); };
          const at::Tensor ref_fake = with_kernels(KernelSet::Reference, fake);
          std::vector<at::Tensor> ref_deq;
          const at::ScalarType outs[] = {at::kFloat, at::kBFloat16, at::kHalf};
          for (at::ScalarType out : outs) {
            ref_deq.push_back(with_kernels(KernelSet::Reference, [&] {
              return lowbit::core::dequantize_affine(q, c.block, s, zp, qdtype, domain, out);
            }));
          }
          for (KernelSet set : sets) {
            const std::string w = std::string(lowbit::cpu::vec::kernel_set_name(set)) + " " + what;
            const auto got_qp = with_kernels(set, choose);
            expect_same(std::get<0>(got_qp), s, w + " scale");
            expect_same(std::get<1>(got_qp), zp, w + " zero_point");
            expect_same(with_kernels(set, quantize), q, w + " quantize");
            for (int i = 0; i < 3; ++i) {
              expect_same(with_kernels(set, [&] {
                return lowbit::core::dequantize_affine(q, c.block, s, zp, qdtype, domain, outs[i]);
              }), ref_deq[i], w + " dequantize to " + c10::toString(outs[i]));
            }
            expect_same(with_kernels(set, fake), ref_fake, w + " fake_quantize");
          }
        }
      }
    }
  }
}

TEST(CpuKernels, BitPackingMatchesReference) {
  for (KernelSet set : vectorized_sets()) {
    for (int bits = 1; bits <= 8; ++bits) {
      for (int64_t n : {0, 1, 7, 8, 9, 63, 1000, 100003}) {
        at::manual_seed(n + bits);
        const at::Tensor codes = at::randint(0, 1 << bits, {n}).to(at::kByte);
        const std::string what = std::string(lowbit::cpu::vec::kernel_set_name(set)) + " bits " +
                                 std::to_string(bits) + " n " + std::to_string(n);
        const at::Tensor ref = with_kernels(KernelSet::Reference, [&] { return lowbit::core::pack_uintx(codes, bits); });
        expect_same(with_kernels(set, [&] { return lowbit::core::pack_uintx(codes, bits); }), ref, what + " pack");
        expect_same(with_kernels(set, [&] { return lowbit::core::unpack_uintx(ref, bits, n); }), codes, what + " unpack");
      }
    }
  }
}

TEST(CpuKernels, ScaledMmEmulationMatchesReference) {
  // Row-wise and tensorwise scales, a transposed (column-major) b as float8_linear passes it,
  // bias or none, every output dtype, and empty dims.
  for (auto [m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{37, 64, 29}, {128, 256, 96}, {0, 8, 4}, {5, 0, 3}}) {
    const at::Tensor x = sample({m, k}, at::kFloat, 1), w = sample({n, k}, at::kFloat, 2);
    for (const char* g : {"tensor", "row"}) {
      const auto [qa, sa] = lowbit::core::cast_to_float8(x, at::kFloat8_e4m3fn, g);
      const auto [qw, sw] = lowbit::core::cast_to_float8(w, at::kFloat8_e4m3fn, g);
      const at::Tensor sb = std::string(g) == "tensor" ? sw : sw.t();
      for (bool with_bias : {false, true}) {
        const std::optional<at::Tensor> bias = with_bias ? std::optional<at::Tensor>(at::randn({n})) : std::nullopt;
        for (at::ScalarType out : {at::kFloat, at::kBFloat16, at::kHalf}) {
          auto mm = [&] { return lowbit::core::scaled_mm(qa, qw.t(), sa, sb, bias, out, false, /*emulate=*/true); };
          const at::Tensor ref = with_kernels(KernelSet::Reference, mm);
          for (KernelSet set : vectorized_sets()) {
            expect_same(with_kernels(set, mm), ref, std::string(lowbit::cpu::vec::kernel_set_name(set)) + " " + g +
                                                        " " + c10::toString(out) + (with_bias ? " bias" : ""));
          }
        }
      }
    }
  }
}

TEST(CpuKernels, ErrorsNameTheSameElement) {
  // Out-of-range codes: both kernel sets report the first one.
  at::Tensor codes = at::zeros({1000}, at::kByte);
  codes[700].fill_(16);
  codes[900].fill_(200);
  at::Tensor q = at::zeros({4, 250}, at::kChar);
  q.view(-1)[600].fill_(9);
  q.view(-1)[800].fill_(-100);
  const at::Tensor s = at::ones({4, 1}), zp = at::zeros({4, 1}, at::kInt);
  for (KernelSet set : lowbit::cpu::vec::available_kernel_sets()) {
    with_kernels(set, [&] {
      try {
        lowbit::core::pack_uintx(codes, 4);
        ADD_FAILURE() << "no error";
      } catch (const c10::Error& e) {
        EXPECT_NE(std::string(e.what()).find("code 16 at flat index 700"), std::string::npos) << e.what();
      }
      try {
        lowbit::core::fpx_decode(codes, 2, 1);
        ADD_FAILURE() << "no error";
      } catch (const c10::Error& e) {
        EXPECT_NE(std::string(e.what()).find("code 16 at flat index 700"), std::string::npos) << e.what();
      }
      try {
        lowbit::core::dequantize_affine(q, {1, 250}, s, zp, "int4");
        ADD_FAILURE() << "no error";
      } catch (const c10::Error& e) {
        EXPECT_NE(std::string(e.what()).find("code 9 at flat index 600"), std::string::npos) << e.what();
      }
      return 0;
    });
  }
}
