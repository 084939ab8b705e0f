// The host-side rules of the CUDA paths, checked on the CPU: scaled_mm's argument checks, early
// returns, geometry, alignment, bias rule, plan key and bounded plan cache (csrc/cuda/scaled_mm_plan.h,
// csrc/ops/scaled_mm_checks.h); the quantized linears' path choice (csrc/cuda/quantized_linear_paths.h);
// and the kernel path counters (lowbit::core::kernel_path.h), through the CPU scaled_mm kernel.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <lowbit/core/float8_cast.h>
#include <lowbit/core/kernel_path.h>
#include <lowbit/core/scaled_mm.h>
#include <lowbit/cuda/quantized_linear_paths.h>
#include <lowbit/cuda/scaled_mm_plan.h>
#include <lowbit/ops/scaled_mm_checks.h>

#include <cstdint>
#include <string>
#include <vector>

#include "expect_error.h"

namespace {

using namespace lowbit::cuda;
using lowbit::core::KernelPath;

const void* address(uintptr_t a) { return reinterpret_cast<const void*>(a); }

TEST(ScaledMmPlan, PointerAlignmentIsTheLargestPowerOfTwoUpTo256) {
  EXPECT_EQ(pointer_alignment(address(0)), 256u);
  EXPECT_EQ(pointer_alignment(address(4096)), 256u);
  EXPECT_EQ(pointer_alignment(address(256 + 128)), 128u);
  EXPECT_EQ(pointer_alignment(address(4096 + 16)), 16u);
  EXPECT_EQ(pointer_alignment(address(4096 + 8)), 8u);
  EXPECT_EQ(pointer_alignment(address(4096 + 1)), 1u);
  EXPECT_EQ(pointer_alignment(address(4096 + 6)), 2u);
  // What the op copies: anything under 16 bytes (e.g. flat[1:].view(...) of an fp8 buffer).
  EXPECT_TRUE(needs_alignment_copy(address(4096 + 1)));
  EXPECT_TRUE(needs_alignment_copy(address(4096 + 8)));
  EXPECT_FALSE(needs_alignment_copy(address(4096 + 16)));
  EXPECT_FALSE(needs_alignment_copy(address(4096)));
}

TEST(ScaledMmPlan, RealTensorsReportTheirOffsets) {
  const at::Tensor flat = at::zeros({1024}, at::kByte);
  const uint32_t base = pointer_alignment(flat.data_ptr());
  ASSERT_GE(base, 16u);  // CPU allocations are at least 64-byte aligned
  EXPECT_EQ(pointer_alignment(flat.narrow(0, 1, 512).data_ptr()), 1u);
  EXPECT_EQ(pointer_alignment(flat.narrow(0, 16, 512).data_ptr()), 16u);
  EXPECT_TRUE(needs_alignment_copy(flat.narrow(0, 1, 512).view({16, 32}).data_ptr()));
}

TEST(ScaledMmPlan, GeometryPadsKAndNTo16AndCopiesTheOutputOnlyForOddN) {
  ScaledMmGeometry g = scaled_mm_geometry(100, 72, 40);
  EXPECT_EQ(g.k_pad, 48);
  EXPECT_EQ(g.n_pad, 80);
  EXPECT_TRUE(g.output_copy);
  g = scaled_mm_geometry(7, 4096, 4096);  // M is never padded
  EXPECT_EQ(g.m, 7);
  EXPECT_EQ(g.n_pad, 4096);
  EXPECT_EQ(g.k_pad, 4096);
  EXPECT_FALSE(g.output_copy);
  g = scaled_mm_geometry(16, 4095, 16);
  EXPECT_EQ(g.n_pad, 4096);
  EXPECT_TRUE(g.output_copy);
}

TEST(ScaledMmPlan, BiasIsFusedFor16BitOutputsAndAddedAfterForFloat32) {
  EXPECT_EQ(bias_epilogue(false, false), BiasEpilogue::None);
  EXPECT_EQ(bias_epilogue(false, true), BiasEpilogue::None);
  EXPECT_EQ(bias_epilogue(true, false), BiasEpilogue::Fused);
  EXPECT_EQ(bias_epilogue(true, true), BiasEpilogue::AfterGemm);
}

TEST(ScaledMmPlan, KeysDifferInEveryFieldTheAlgorithmDependsOn) {
  const PlanKey base;
  PlanKeyHash hash;
  std::vector<PlanKey> variants(16, base);
  variants[0].device = 1;
  variants[1].rows = 16;
  variants[2].cols = 3;
  variants[3].depth = 32;
  variants[4].a_type = 28;
  variants[5].b_type = 29;
  variants[6].out_type = 14;
  variants[7].bias_type = 14;
  variants[8].scale_mode = ScaleMode::OuterVector;
  variants[9].fast_accum = true;
  variants[10].align_a = 16;  // a 16-byte aligned view must not reuse a 256-byte aligned algorithm
  variants[11].align_b = 16;
  variants[12].align_out = 128;
  variants[13].align_scale_a = 4;
  variants[14].align_scale_b = 4;
  variants[15].align_bias = 16;
  for (size_t i = 0; i < variants.size(); ++i) {
    EXPECT_FALSE(variants[i] == base) << "field " << i;
    EXPECT_NE(hash(variants[i]), hash(base)) << "field " << i;
  }
  PlanKey same = base;
  EXPECT_TRUE(same == base);
  EXPECT_EQ(hash(same), hash(base));
}

struct Counted {
  static int live;
  int value;
  explicit Counted(int v) : value(v) { ++live; }
  ~Counted() { --live; }
};
int Counted::live = 0;

TEST(ScaledMmPlan, LruCacheEvictsTheLeastRecentlyUsedAndDestroysIt) {
  Counted::live = 0;
  {
    LruCache<int, Counted> cache(3);
    int made = 0;
    auto get = [&](int k) -> Counted& {
      return cache.get_or_create(k, [&] {
        ++made;
        return std::make_unique<Counted>(k * 10);
      });
    };
    EXPECT_EQ(get(1).value, 10);
    EXPECT_EQ(get(2).value, 20);
    EXPECT_EQ(get(3).value, 30);
    EXPECT_EQ(get(1).value, 10);  // hit: 1 is now the most recent
    EXPECT_EQ(made, 3);
    get(4);  // evicts 2, the least recently used
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(Counted::live, 3);
    EXPECT_FALSE(cache.contains(2));
    EXPECT_TRUE(cache.contains(1) && cache.contains(3) && cache.contains(4));
    EXPECT_EQ(cache.evictions(), 1);
    EXPECT_EQ(cache.hits(), 1);
    EXPECT_EQ(cache.misses(), 4);
    for (int k = 100; k < 100 + 1000; ++k) get(k);  // a stream of new shapes stays bounded
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_EQ(Counted::live, 3);
  }
  EXPECT_EQ(Counted::live, 0);
}

TEST(ScaledMmPlan, AFailedMakeLeavesTheCacheUnchanged) {
  LruCache<int, int> cache(2);
  cache.get_or_create(1, [] { return std::make_unique<int>(1); });
  EXPECT_THROW(cache.get_or_create(2, []() -> std::unique_ptr<int> { throw std::runtime_error("no"); }),
               std::runtime_error);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.contains(2));
  EXPECT_EQ(kPlanCacheCapacity, 256u);
}

TEST(ScaledMmChecks, EmptyProblemsAreClassifiedBeforeAnyGemm) {
  using lowbit::ops::classify_scaled_mm;
  using lowbit::ops::ScaledMmEmpty;
  EXPECT_EQ(classify_scaled_mm(0, 16, 16), ScaledMmEmpty::EmptyOutput);
  EXPECT_EQ(classify_scaled_mm(16, 0, 16), ScaledMmEmpty::EmptyOutput);
  EXPECT_EQ(classify_scaled_mm(0, 0, 0), ScaledMmEmpty::EmptyOutput);
  EXPECT_EQ(classify_scaled_mm(16, 16, 0), ScaledMmEmpty::ZeroK);
  EXPECT_EQ(classify_scaled_mm(1, 1, 1), ScaledMmEmpty::None);
}

struct Fp8Operands {
  at::Tensor a, b, scale_a, scale_b;
};

// fp8 operands of an (m, k) x (k, n) problem with row-wise (or tensorwise) scales.
Fp8Operands operands(int64_t m, int64_t n, int64_t k, bool rowwise) {
  const char* ga = rowwise ? "row" : "tensor";
  const char* gb = rowwise ? "column" : "tensor";
  auto [qa, sa] = lowbit::core::cast_to_float8(torch::randn({m, k}), at::kFloat8_e4m3fn, ga);
  auto [qb, sb] = lowbit::core::cast_to_float8(torch::randn({k, n}), at::kFloat8_e4m3fn, gb);
  return {qa, qb, sa, sb};
}

TEST(ScaledMmChecks, EmptyProblemsOnTheCpuFollowTheRule) {
  torch::manual_seed(0);
  const at::Tensor bias = torch::randn({24});
  for (bool rowwise : {false, true}) {
    // M = 0 and N = 0: empty results of the right shape and dtype.
    Fp8Operands e = operands(0, 24, 32, rowwise);
    at::Tensor out = lowbit::core::scaled_mm(e.a, e.b, e.scale_a, e.scale_b, bias, at::kBFloat16, false, true);
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{0, 24}));
    EXPECT_EQ(out.scalar_type(), at::kBFloat16);
    EXPECT_EQ(lowbit::core::scaled_mm_last_path(), "empty");
    e = operands(8, 0, 32, rowwise);
    out = lowbit::core::scaled_mm(e.a, e.b, e.scale_a, e.scale_b, std::nullopt, at::kFloat, false, true);
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{8, 0}));
    // K = 0: nothing to sum, so the bias broadcast over the rows (zeros without a bias).
    e = operands(8, 24, 0, rowwise);
    out = lowbit::core::scaled_mm(e.a, e.b, e.scale_a, e.scale_b, bias, at::kFloat, false, true);
    EXPECT_TRUE(out.equal(bias.expand({8, 24})));
    out = lowbit::core::scaled_mm(e.a, e.b, e.scale_a, e.scale_b, std::nullopt, at::kBFloat16, false, true);
    EXPECT_TRUE(out.equal(torch::zeros({8, 24}, at::kBFloat16)));
    EXPECT_EQ(lowbit::core::scaled_mm_last_path(), "empty");
  }
}

TEST(ScaledMmChecks, BiasMustBeAFloatOnTheOperandsDevice) {
  torch::manual_seed(0);
  const Fp8Operands o = operands(8, 16, 32, true);
  expect_error([&] { lowbit::core::scaled_mm(o.a, o.b, o.scale_a, o.scale_b, torch::zeros({16}, at::kInt), {}, false, true); },
               "scaled_mm: bias must be float32, bfloat16 or float16, got Int");
  // A bias on another device (meta stands in for a GPU here) is refused before any kernel runs.
  expect_error([&] {
    lowbit::core::scaled_mm(o.a, o.b, o.scale_a, o.scale_b, torch::zeros({16}, at::device(at::kMeta)), {}, false, true);
  }, "scaled_mm: all tensors must be on one device: a is on cpu, bias on meta");
  expect_error([&] {
    lowbit::core::scaled_mm(o.a, o.b, o.scale_a.to(at::kMeta), o.scale_b, std::nullopt, {}, false, true);
  }, "scale_a on meta");
}

TEST(KernelPaths, ScaledMmRecordsEmulatedAndEmptyCalls) {
  torch::manual_seed(0);
  lowbit::core::reset_kernel_path_counts();
  EXPECT_EQ(lowbit::core::scaled_mm_last_path(), "none");
  const Fp8Operands o = operands(8, 16, 32, false);
  lowbit::core::scaled_mm(o.a, o.b, o.scale_a, o.scale_b, std::nullopt, std::nullopt, false, true);
  EXPECT_EQ(lowbit::core::scaled_mm_last_path(), "emulated");
  lowbit::core::scaled_mm(o.a.narrow(0, 0, 0), o.b, o.scale_a, o.scale_b, std::nullopt, std::nullopt, false, true);
  EXPECT_EQ(lowbit::core::last_kernel_path("scaled_mm"), "empty");
  const auto counts = lowbit::core::kernel_path_counts();
  EXPECT_EQ(counts.at("scaled_mm/emulated"), 1);
  EXPECT_EQ(counts.at("scaled_mm/empty"), 1);
  EXPECT_EQ(counts.at("scaled_mm/cublaslt_outer_vector"), 0);
  EXPECT_EQ(counts.size(), static_cast<size_t>(KernelPath::Count));
  EXPECT_EQ(lowbit::core::last_kernel_path("weight_only_linear"), "none");
  expect_error([] { lowbit::core::last_kernel_path("gemm"); }, "unknown op 'gemm'");
  // A CPU call that is refused records nothing.
  expect_error([&] { lowbit::core::scaled_mm(o.a, o.b, o.scale_a, o.scale_b); }, "emulate=True");
  EXPECT_EQ(lowbit::core::kernel_path_counts().at("scaled_mm/emulated"), 1);
  lowbit::core::reset_kernel_path_counts();
  EXPECT_EQ(lowbit::core::kernel_path_counts().at("scaled_mm/emulated"), 0);
  EXPECT_EQ(lowbit::core::scaled_mm_last_path(), "none");
}

TEST(KernelPaths, EveryPathHasAFamilyAndAName) {
  for (int i = 0; i < static_cast<int>(KernelPath::Count); ++i) {
    const auto p = static_cast<KernelPath>(i);
    EXPECT_FALSE(std::string(lowbit::core::kernel_path_op(p)).empty());
    EXPECT_FALSE(std::string(lowbit::core::kernel_path_name(p)).empty());
  }
  EXPECT_STREQ(lowbit::core::kernel_path_name(KernelPath::ScaledMmOuterVector), "cublaslt_outer_vector");
  EXPECT_STREQ(lowbit::core::kernel_path_op(KernelPath::WeightOnlyWmma), "weight_only_linear");
}

TEST(QuantizedLinearPaths, WeightOnlyPathChoice) {
  // chunked, with tensor cores (bf16 / fp16 on sm_80+)
  EXPECT_EQ(choose_weight_only_path(0, 64, true, true), WeightOnlyPath::Empty);
  EXPECT_EQ(choose_weight_only_path(5, 0, true, true), WeightOnlyPath::Empty);
  EXPECT_EQ(choose_weight_only_path(1, 64, true, true), WeightOnlyPath::Gemv);
  EXPECT_EQ(choose_weight_only_path(8, 64, true, true), WeightOnlyPath::Gemv);
  EXPECT_EQ(choose_weight_only_path(9, 64, true, true), WeightOnlyPath::Wmma);
  EXPECT_EQ(choose_weight_only_path(256, 64, true, true), WeightOnlyPath::Wmma);
  EXPECT_EQ(choose_weight_only_path(257, 64, true, true), WeightOnlyPath::DequantCublas);
  // float32 input: GEMV only
  EXPECT_EQ(choose_weight_only_path(8, 64, true, false), WeightOnlyPath::Gemv);
  EXPECT_EQ(choose_weight_only_path(9, 64, true, false), WeightOnlyPath::DequantCublas);
  // unchunked weights: always dequantize
  EXPECT_EQ(choose_weight_only_path(1, 64, false, true), WeightOnlyPath::DequantCublas);
  EXPECT_TRUE(warns_unchunked(1, 64, false));
  EXPECT_TRUE(warns_unchunked(256, 64, false));
  EXPECT_FALSE(warns_unchunked(257, 64, false));
  EXPECT_FALSE(warns_unchunked(0, 64, false));
  EXPECT_FALSE(warns_unchunked(1, 64, true));
  EXPECT_TRUE(wmma_capable(false, 9));
  EXPECT_TRUE(wmma_capable(false, 8));
  EXPECT_FALSE(wmma_capable(false, 7));
  EXPECT_FALSE(wmma_capable(true, 9));
}

TEST(QuantizedLinearPaths, UnchunkedReasons) {
  // K = 256, 4-bit: a packed row is 128 bytes.
  EXPECT_EQ(unchunked_reason(256, 4, true, 64, true, 128, true), nullptr);
  EXPECT_EQ(unchunked_reason(256, 8, false, 1, true, 256, true), nullptr);  // int8
  EXPECT_STREQ(unchunked_reason(72, 4, true, 8, true, 36, true), "in_features is not a multiple of 32");
  EXPECT_STREQ(unchunked_reason(256, 4, true, 16, true, 128, true), "group_size is not a multiple of 32");
  EXPECT_EQ(unchunked_reason(256, 4, false, 16, true, 128, true), nullptr);  // group size is uintx's alone
  const char* layout = "the packed weight is not a contiguous, 16-byte aligned (N, K * bits / 8) tensor";
  EXPECT_STREQ(unchunked_reason(256, 4, true, 64, false, 128, true), layout);
  EXPECT_STREQ(unchunked_reason(256, 4, true, 64, true, 64, true), layout);
  EXPECT_STREQ(unchunked_reason(256, 4, true, 64, true, 128, false), layout);
}

TEST(QuantizedLinearPaths, Int8DynamicPathChoice) {
  EXPECT_EQ(choose_int8_dynamic_path(0, 64, 64), Int8DynamicPath::Empty);
  EXPECT_EQ(choose_int8_dynamic_path(4, 64, 0), Int8DynamicPath::Empty);
  EXPECT_EQ(choose_int8_dynamic_path(16, 64, 64), Int8DynamicPath::Dp4a);
  EXPECT_EQ(choose_int8_dynamic_path(17, 64, 64), Int8DynamicPath::IntMm);
  EXPECT_EQ(choose_int8_dynamic_path(17, 36, 64), Int8DynamicPath::Dp4a);   // K % 8
  EXPECT_EQ(choose_int8_dynamic_path(17, 64, 20), Int8DynamicPath::Dp4a);   // N % 8
  EXPECT_EQ(choose_int8_dynamic_path(17, 0, 64), Int8DynamicPath::Dp4a);    // K = 0
  EXPECT_EQ(choose_int8_dynamic_path(4096, 4096, 1024), Int8DynamicPath::IntMm);
}

}  // namespace
