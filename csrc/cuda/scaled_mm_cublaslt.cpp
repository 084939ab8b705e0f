// CUDA kernel of lowbit::scaled_mm: fp8 x fp8 through cuBLASLt.
//
// Layout: cuBLASLt is column-major and its fp8 GEMMs take both operands K-major ("TN"). We
// compute C^T (N x M column-major, which is C row-major) = op(A') * op(B') with
//   A' = b as N rows of K (b column-major), op T;   B' = a as M rows of K (a row-major), op N.
// The op arranges that itself: a is made row-major, b column-major, K and N padded to multiples
// of 16 with zeros (the padded products are zero; padded output columns are sliced away, one copy
// of the output when N % 16 != 0; see scaled_mm_plan.h for these rules, tested on the CPU).
//
// Scales: tensorwise scales are cuBLASLt's scalar A/B scale pointers (device memory, so no host
// sync). Row-wise scales (and a row-wise x tensorwise mix, the scalar expanded) use cuBLASLt's
// outer-vector scaling (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, cuBLAS >= 12.9; applied in
// the epilogue). If cuBLASLt reports NOT_SUPPORTED (or no algorithm) for that mode, we run the GEMM
// with unit scales into float32 and apply the vectors with one elementwise pass, and warn once:
// correct, but it moves an extra M*N*4 bytes each way. Any other status is an error.
//
// Bias: fused into cuBLASLt's epilogue (bias in the output type) for bf16 / fp16 outputs; added in
// float32 after the GEMM for float32 outputs (the fp8 epilogue would want a bf16 bias there).
//
// Plans: descriptors and the heuristic's algorithm are cached per thread in a bounded LRU keyed on
// everything they depend on, pointer alignments included. The real scale and bias pointers are
// set on the descriptor before the heuristic is asked (an algorithm chosen without them may not
// support scaling), and again before every call. Buffers under 16-byte alignment are copied.
// The workspace is PyTorch's cuBLASLt workspace for the current stream.
// Which path ran is recorded (lowbit::core::scaled_mm_last_path / kernel_path_counts).
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContextLight.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>
#include <cublasLt.h>
#include <torch/library.h>

#include <memory>
#include <type_traits>

#include <lowbit/core/kernel_path.h>
#include <lowbit/ops/scaled_mm_checks.h>

#include "../cpu/scaled_mm_reference.h"
#include "scaled_mm_plan.h"

namespace lowbit::cuda {
namespace {

#define LOWBIT_CUBLASLT_CHECK(expr)                                                                        \
  do {                                                                                                    \
    const cublasStatus_t status_ = (expr);                                                                \
    TORCH_CHECK(status_ == CUBLAS_STATUS_SUCCESS, "scaled_mm: ", #expr, " failed: ", cublasLtGetStatusString(status_)); \
  } while (0)

cudaDataType_t cuda_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat8_e4m3fn: return CUDA_R_8F_E4M3;
    case at::kFloat8_e5m2: return CUDA_R_8F_E5M2;
    case at::kBFloat16: return CUDA_R_16BF;
    case at::kHalf: return CUDA_R_16F;
    case at::kFloat: return CUDA_R_32F;
    default: TORCH_CHECK(false, "scaled_mm: no CUDA data type for ", t);
  }
}

// t itself, or a contiguous copy when t's data is not 16-byte aligned (e.g. flat[1:].view(...)).
at::Tensor aligned(const at::Tensor& t) {
  return needs_alignment_copy(t.const_data_ptr()) ? t.clone(at::MemoryFormat::Contiguous) : t;
}

// Pads the last dim of a 2-D fp8 tensor with zero bytes.
at::Tensor pad_cols(const at::Tensor& t, int64_t cols) {
  if (t.size(1) == cols) return t;
  return at::constant_pad_nd(t.view(at::kByte), {0, cols - t.size(1)}, 0).view(t.scalar_type());
}

// Pads the first dim of a 2-D fp8 tensor with zero rows.
at::Tensor pad_rows(const at::Tensor& t, int64_t rows) {
  if (t.size(0) == rows) return t;
  return at::constant_pad_nd(t.view(at::kByte), {0, 0, 0, rows - t.size(0)}, 0).view(t.scalar_type());
}

// A matmul descriptor, its layouts and the heuristic's algorithm (asked on first use).
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  bool queried = false, has_algo = false;
  cublasLtMatmulAlgo_t algo{};
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    for (auto l : {a, b, c})
      if (l) cublasLtMatrixLayoutDestroy(l);
  }
};

std::unique_ptr<Plan> make_plan(const PlanKey& key) {
  auto plan = std::make_unique<Plan>();
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
  const int8_t fast = key.fast_accum ? 1 : 0;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  if (key.scale_mode == ScaleMode::OuterVector) {
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)));
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)));
  }
  if (key.bias_type >= 0) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const int32_t bias_type = key.bias_type;
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  // A' = b: K x N column-major (ld K); B' = a: K x M column-major (ld K); C = D: N x M (ld N).
  const auto type = [](int t) { return static_cast<cudaDataType_t>(t); };
  LOWBIT_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&plan->a, type(key.b_type), key.depth, key.rows, key.depth));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&plan->b, type(key.a_type), key.depth, key.cols, key.depth));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&plan->c, type(key.out_type), key.rows, key.cols, key.rows));
  return plan;
}

const char* scale_mode_name(ScaleMode m) { return m == ScaleMode::OuterVector ? "outer-vector" : "tensorwise"; }

// Asks the heuristic once per plan, with the plan's pointers already on the descriptor and the
// buffers' alignments as preferences. NOT_SUPPORTED or no result: no algorithm (the caller decides
// whether that is an error); any other failure is an error, and nothing is cached for it.
void query_algorithm(Plan& plan, const PlanKey& key, cublasLtHandle_t handle, size_t workspace_bytes) {
  cublasLtMatmulPreference_t pref = nullptr;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, decltype(&cublasLtMatmulPreferenceDestroy)>
      guard(pref, &cublasLtMatmulPreferenceDestroy);
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &workspace_bytes, sizeof(workspace_bytes)));
  // cuBLASLt's A is our b and its B our a (the layout note); C and D are both `out`.
  const uint32_t align[4] = {key.align_b, key.align_a, key.align_out, key.align_out};
  const cublasLtMatmulPreferenceAttributes_t attr[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr[i], &align[i], sizeof(align[i])));

  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b, plan.c, plan.c,
                                                               pref, 1, &result, &returned);
  TORCH_CHECK(status == CUBLAS_STATUS_SUCCESS || status == CUBLAS_STATUS_NOT_SUPPORTED,
              "scaled_mm: cublasLtMatmulAlgoGetHeuristic failed: ", cublasLtGetStatusString(status), " (M=", key.cols,
              ", N=", key.rows, ", K=", key.depth, " after padding, ", scale_mode_name(key.scale_mode), " scales, ",
              key.bias_type >= 0 ? "bias epilogue" : "no bias epilogue", ")");
  plan.queried = true;
  plan.has_algo = status == CUBLAS_STATUS_SUCCESS && returned > 0;
  if (plan.has_algo) plan.algo = result.algo;
}

// The operands of one cuBLASLt call, already laid out (a_rm: (M, k_pad) row-major; b_cm: (n_pad,
// k_pad) row-major, i.e. b column-major), scales (two scalars, or vectors of M and n_pad floats)
// and bias (n_pad values of the output type) 16-byte aligned where they are vectors.
struct GemmArgs {
  at::Tensor a_rm, b_cm, scale_a, scale_b;
  at::Tensor bias;  // undefined: no bias epilogue
  ScaleMode mode = ScaleMode::Tensorwise;
  bool fast_accum = false;
};

thread_local LruCache<PlanKey, Plan, PlanKeyHash> t_plans(kPlanCacheCapacity);

// One cuBLASLt call into out (M, n_pad); returns false if cuBLASLt has no algorithm for it.
bool run_cublaslt(const GemmArgs& g, at::Tensor& out) {
  cublasLtHandle_t handle = at::cuda::getCurrentCUDABlasLtHandle();
  const size_t workspace_bytes = at::cuda::getCUDABlasLtWorkspaceSize();
  PlanKey key;
  key.device = g.a_rm.device().index();
  key.rows = g.b_cm.size(0);
  key.cols = g.a_rm.size(0);
  key.depth = g.a_rm.size(1);
  key.a_type = cuda_dtype(g.a_rm.scalar_type());
  key.b_type = cuda_dtype(g.b_cm.scalar_type());
  key.out_type = cuda_dtype(out.scalar_type());
  key.bias_type = g.bias.defined() ? static_cast<int>(cuda_dtype(g.bias.scalar_type())) : -1;
  key.scale_mode = g.mode;
  key.fast_accum = g.fast_accum;
  key.align_a = pointer_alignment(g.a_rm.const_data_ptr());
  key.align_b = pointer_alignment(g.b_cm.const_data_ptr());
  key.align_out = pointer_alignment(out.const_data_ptr());
  key.align_scale_a = pointer_alignment(g.scale_a.const_data_ptr());
  key.align_scale_b = pointer_alignment(g.scale_b.const_data_ptr());
  key.align_bias = g.bias.defined() ? pointer_alignment(g.bias.const_data_ptr()) : kMaxAlignment;
  Plan& plan = t_plans.get_or_create(key, [&] { return make_plan(key); });

  // The scale of cuBLASLt's A is ours for b, and its B's is ours for a (see the layout note).
  // Set before the heuristic is asked, and on every call (the plan is shared by equal keys).
  const void* sa = g.scale_b.const_data_ptr();
  const void* sb = g.scale_a.const_data_ptr();
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof(sa)));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof(sb)));
  if (g.bias.defined()) {
    const void* bp = g.bias.const_data_ptr();
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
  }
  if (!plan.queried) query_algorithm(plan, key, handle, workspace_bytes);
  if (!plan.has_algo) return false;
  const float alpha = 1.0f, beta = 0.0f;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmul(handle, plan.desc, &alpha, g.b_cm.const_data_ptr(), plan.a,
                                       g.a_rm.const_data_ptr(), plan.b, &beta, out.data_ptr(), plan.c, out.data_ptr(),
                                       plan.c, &plan.algo, at::cuda::getCUDABlasLtWorkspace(), workspace_bytes,
                                       c10::cuda::getCurrentCUDAStream(g.a_rm.device().index()).stream()));
  return true;
}

void check_fp8_device(const at::Tensor& a) {
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(a.device().index());
  TORCH_CHECK(prop->major * 10 + prop->minor >= 89, "scaled_mm: ", prop->name, " (sm_", prop->major, prop->minor,
              ") has no fp8 tensor cores (sm_89+ needed); pass emulate=True (Float8LinearConfig(emulate=True)) for "
              "the float32 emulation");
}

at::Tensor scaled_mm_cuda(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                          const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                          std::optional<at::ScalarType> out_dtype, bool use_fast_accum, bool emulate) {
  const at::ScalarType out_type = ops::check_scaled_mm_args(a, b, scale_a, scale_b, bias, out_dtype);
  const ScaledMmGeometry geo = scaled_mm_geometry(a.size(0), b.size(1), a.size(1));
  const bool empty = ops::classify_scaled_mm(geo.m, geo.n, geo.k) != ops::ScaledMmEmpty::None;
  if (emulate) {
    core::record_kernel_path(empty ? core::KernelPath::ScaledMmEmpty : core::KernelPath::ScaledMmEmulated);
    return cpu::scaled_mm_reference(a, b, scale_a, scale_b, bias, out_type);
  }
  check_fp8_device(a);
  c10::cuda::CUDAGuard guard(a.device());
  if (empty) {  // cuBLASLt rejects zero extents; the reference's ATen ops make zeros (plus bias)
    core::record_kernel_path(core::KernelPath::ScaledMmEmpty);
    return cpu::scaled_mm_reference(a, b, scale_a, scale_b, bias, out_type);
  }
  const int64_t m = geo.m, n = geo.n, n_pad = geo.n_pad;

  GemmArgs g;
  g.a_rm = aligned(pad_cols(a.contiguous(), geo.k_pad));
  g.b_cm = aligned(pad_rows(pad_cols(b.t().contiguous(), geo.k_pad), n_pad));  // (N, K) row-major == b column-major
  g.mode = scale_a.numel() != 1 || scale_b.numel() != 1 ? ScaleMode::OuterVector : ScaleMode::Tensorwise;
  g.fast_accum = use_fast_accum;
  if (g.mode == ScaleMode::OuterVector) {
    g.scale_a = aligned(scale_a.reshape({-1, 1}).expand({m, 1}).contiguous().view({m}));
    at::Tensor sb = scale_b.reshape({1, -1}).expand({1, n}).contiguous().view({n});
    g.scale_b = aligned(n_pad != n ? at::constant_pad_nd(sb, {0, n_pad - n}, 1.0) : sb);
  } else {
    g.scale_a = scale_a.reshape({1}).contiguous();
    g.scale_b = scale_b.reshape({1}).contiguous();
  }
  const BiasEpilogue bias_step = bias_epilogue(bias.has_value(), out_type == at::kFloat);
  if (bias_step == BiasEpilogue::Fused) {
    const at::Tensor bias_out = bias->to(out_type).contiguous();
    g.bias = aligned(n_pad != n ? at::constant_pad_nd(bias_out, {0, n_pad - n}, 0) : bias_out);
  }

  at::Tensor out = at::empty({m, n_pad}, a.options().dtype(out_type));
  if (run_cublaslt(g, out)) {
    core::record_kernel_path(g.mode == ScaleMode::OuterVector ? core::KernelPath::ScaledMmOuterVector
                                                               : core::KernelPath::ScaledMmTensorwise);
    if (bias_step == BiasEpilogue::AfterGemm) out.narrow(1, 0, n).add_(bias->to(at::kFloat));
  } else {
    TORCH_CHECK(g.mode == ScaleMode::OuterVector, "scaled_mm: cuBLASLt has no algorithm for this fp8 GEMM (M=", m,
                ", N=", n, ", K=", geo.k, ", ", a.scalar_type(), " x ", b.scalar_type(), " -> ", out_type, ")");
    TORCH_WARN_ONCE("scaled_mm: cuBLASLt offers no outer-vector (row-wise) scaling for this GEMM on this device; "
                    "applying row-wise scales in a separate elementwise pass (slower; "
                    "lowbit.core.scaled_mm_last_path() reports 'unit_scale_fallback')");
    // Unit scales, no bias epilogue, float32 out; then the reference's epilogue order.
    GemmArgs unit = g;
    unit.mode = ScaleMode::Tensorwise;
    unit.scale_a = unit.scale_b = at::ones({1}, a.options().dtype(at::kFloat));
    unit.bias = at::Tensor();
    at::Tensor acc = at::empty({m, n_pad}, a.options().dtype(at::kFloat));
    TORCH_CHECK(run_cublaslt(unit, acc), "scaled_mm: cuBLASLt has no algorithm for this fp8 GEMM (M=", m, ", N=", n,
                ", K=", geo.k, ", ", a.scalar_type(), " x ", b.scalar_type(), " -> float32, unit scales)");
    core::record_kernel_path(core::KernelPath::ScaledMmUnitScaleFallback);
    acc = acc * g.scale_a.view({m, 1}) * g.scale_b.view({1, n_pad});
    if (bias.has_value()) acc.narrow(1, 0, n).add_(bias->to(at::kFloat));
    out = acc.to(out_type);
  }
  return geo.output_copy ? out.narrow(1, 0, n).contiguous() : out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("scaled_mm", &scaled_mm_cuda); }

}  // namespace lowbit::cuda
