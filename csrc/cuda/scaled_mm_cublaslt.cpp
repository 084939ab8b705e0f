// CUDA kernel of lowbit::scaled_mm: fp8 x fp8 through cuBLASLt.
//
// Layout: cuBLASLt is column-major and its fp8 GEMMs take both operands K-major ("TN"). We
// compute C^T (N x M column-major, which is C row-major) = op(B') * op(A') with
//   A' = b as N rows of K (b column-major), op T;   B' = a as M rows of K (a row-major), op N.
// The op arranges that itself: a is made row-major, b column-major, K and N padded to multiples
// of 16 with zeros (the padded products are zero; padded output columns are sliced away).
//
// Scales: tensorwise scales are cuBLASLt's scalar A/B scale pointers (device memory, so no host
// sync). Row-wise scales use cuBLASLt's outer-vector scaling (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F,
// cuBLAS >= 12.9; applied in the epilogue). If the library offers no algorithm for that mode on
// this device, we run the GEMM with unit scales into float32 and apply the vectors with one fused
// elementwise pass, and warn once: correct, but it moves an extra M*N*4 bytes each way.
//
// Descriptors and the heuristic's algorithm are cached per (device, shape, dtypes, mode) in a
// thread-local map; the workspace is PyTorch's cuBLASLt workspace for the current stream.
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
#include <tuple>
#include <unordered_map>

#include <lowbit/ops/scaled_mm_checks.h>

#include "../cpu/scaled_mm_reference.h"

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

int64_t round_up_16(int64_t x) { return (x + 15) / 16 * 16; }

// Pads the last dim of a 2-D fp8 tensor with zero bytes.
at::Tensor pad_cols(const at::Tensor& t, int64_t cols) {
  if (t.size(1) == cols) return t;
  return at::constant_pad_nd(t.view(at::kByte), {0, cols - t.size(1)}, 0).view(t.scalar_type());
}

struct PlanKey {
  int device;
  int64_t m, n, k;
  int a_type, b_type, out_type;
  bool outer_vec, bias, fast_accum;
  bool operator==(const PlanKey& o) const {
    return std::tie(device, m, n, k, a_type, b_type, out_type, outer_vec, bias, fast_accum) ==
           std::tie(o.device, o.m, o.n, o.k, o.a_type, o.b_type, o.out_type, o.outer_vec, o.bias, o.fast_accum);
  }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    size_t h = std::hash<int64_t>()(k.m);
    for (int64_t v : {k.n, k.k, int64_t(k.device), int64_t(k.a_type), int64_t(k.b_type), int64_t(k.out_type),
                      int64_t(k.outer_vec), int64_t(k.bias), int64_t(k.fast_accum)})
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h;
  }
};

// A matmul descriptor, its four layouts and the chosen algorithm (nullopt: none available).
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  bool has_algo = false;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    for (auto l : {a, b, c})
      if (l) cublasLtMatrixLayoutDestroy(l);
  }
};

Plan& get_plan(const PlanKey& key, cublasLtHandle_t handle, size_t workspace_bytes) {
  thread_local std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> cache;
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;

  auto plan = std::make_unique<Plan>();
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
  const int8_t fast = key.fast_accum ? 1 : 0;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  if (key.outer_vec) {
    const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)));
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)));
  }
  if (key.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = static_cast<cudaDataType_t>(key.out_type);
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  // A' = b: K x N column-major (ld K); B' = a: K x M column-major (ld K); C = D: N x M (ld N).
  LOWBIT_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&plan->a, static_cast<cudaDataType_t>(key.b_type), key.k, key.n, key.k));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&plan->b, static_cast<cudaDataType_t>(key.a_type), key.k, key.m, key.k));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&plan->c, static_cast<cudaDataType_t>(key.out_type), key.n, key.m, key.n));

  cublasLtMatmulPreference_t pref;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &workspace_bytes, sizeof(workspace_bytes)));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle, plan->desc, plan->a, plan->b, plan->c, plan->c,
                                                               pref, 1, &result, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (status == CUBLAS_STATUS_SUCCESS && returned > 0) {
    plan->has_algo = true;
    plan->algo = result.algo;
  }
  return *cache.emplace(key, std::move(plan)).first->second;
}

void check_fp8_device(const at::Tensor& a) {
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(a.device().index());
  TORCH_CHECK(prop->major * 10 + prop->minor >= 89, "scaled_mm: ", prop->name, " (sm_", prop->major, prop->minor,
              ") has no fp8 tensor cores (sm_89+ needed); pass emulate=True (Float8LinearConfig(emulate=True)) for "
              "the float32 emulation");
}

// One cuBLASLt call; returns false if cuBLASLt has no algorithm for this configuration.
bool run_cublaslt(const at::Tensor& a_rm, const at::Tensor& b_cm, const at::Tensor& scale_a, const at::Tensor& scale_b,
                  const std::optional<at::Tensor>& bias, bool outer_vec, bool fast_accum, at::Tensor& out) {
  cublasLtHandle_t handle = at::cuda::getCurrentCUDABlasLtHandle();
  const size_t workspace_bytes = at::cuda::getCUDABlasLtWorkspaceSize();
  const PlanKey key{a_rm.device().index(), a_rm.size(0), b_cm.size(0), a_rm.size(1),
                    cuda_dtype(a_rm.scalar_type()), cuda_dtype(b_cm.scalar_type()), cuda_dtype(out.scalar_type()),
                    outer_vec, bias.has_value(), fast_accum};
  Plan& plan = get_plan(key, handle, workspace_bytes);
  if (!plan.has_algo) return false;
  // The scale of cuBLASLt's A is ours for b, and its B's is ours for a (see the layout note).
  const void* sa = scale_b.data_ptr();
  const void* sb = scale_a.data_ptr();
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof(sa)));
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof(sb)));
  if (bias.has_value()) {
    const void* bp = bias->data_ptr();
    LOWBIT_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)));
  }
  const float alpha = 1.0f, beta = 0.0f;
  LOWBIT_CUBLASLT_CHECK(cublasLtMatmul(handle, plan.desc, &alpha, b_cm.data_ptr(), plan.a, a_rm.data_ptr(), plan.b, &beta,
                                       out.data_ptr(), plan.c, out.data_ptr(), plan.c, &plan.algo,
                                       at::cuda::getCUDABlasLtWorkspace(), workspace_bytes,
                                       c10::cuda::getCurrentCUDAStream(a_rm.device().index()).stream()));
  return true;
}

at::Tensor scaled_mm_cuda(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                          const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                          std::optional<at::ScalarType> out_dtype, bool use_fast_accum, bool emulate) {
  const at::ScalarType out_type = ops::check_scaled_mm_args(a, b, scale_a, scale_b, bias, out_dtype);
  if (emulate) return cpu::scaled_mm_reference(a, b, scale_a, scale_b, bias, out_type);
  check_fp8_device(a);
  c10::cuda::CUDAGuard guard(a.device());

  const int64_t m = a.size(0), n = b.size(1);
  const int64_t k_pad = round_up_16(a.size(1)), n_pad = round_up_16(n);
  const at::Tensor a_rm = pad_cols(a.contiguous(), k_pad);
  at::Tensor b_cm = pad_cols(b.t().contiguous(), k_pad);  // (N, K) row-major == b column-major
  if (n_pad != n) b_cm = at::constant_pad_nd(b_cm.view(at::kByte), {0, 0, 0, n_pad - n}, 0).view(b.scalar_type());

  const bool outer_vec = scale_a.numel() != 1 || scale_b.numel() != 1;
  at::Tensor sa = scale_a.contiguous(), sb = scale_b.contiguous();
  if (outer_vec) {
    sa = scale_a.expand({m, 1}).contiguous().view({m});
    sb = scale_b.reshape({1, -1}).expand({1, n}).contiguous().view({n});
    if (n_pad != n) sb = at::constant_pad_nd(sb, {0, n_pad - n}, 1.0);
  }
  std::optional<at::Tensor> bias_padded;
  if (bias.has_value()) bias_padded = at::constant_pad_nd(bias->to(out_type).contiguous(), {0, n_pad - n}, 0);

  at::Tensor out = at::empty({m, n_pad}, a.options().dtype(out_type));
  if (!run_cublaslt(a_rm, b_cm, sa, sb, bias_padded, outer_vec, use_fast_accum, out)) {
    TORCH_CHECK(outer_vec, "scaled_mm: cuBLASLt has no algorithm for this fp8 GEMM (M=", m, ", N=", n, ", K=",
                a.size(1), ", ", a.scalar_type(), " x ", b.scalar_type(), " -> ", out_type, ")");
    TORCH_WARN_ONCE("scaled_mm: cuBLASLt offers no outer-vector (row-wise) scaling on this device; applying "
                    "row-wise scales in a separate elementwise pass");
    const at::Tensor one = at::ones({1}, a.options().dtype(at::kFloat));
    at::Tensor acc = at::empty({m, n_pad}, a.options().dtype(at::kFloat));
    TORCH_CHECK(run_cublaslt(a_rm, b_cm, one, one, std::nullopt, false, use_fast_accum, acc),
                "scaled_mm: cuBLASLt has no algorithm for this fp8 GEMM (M=", m, ", N=", n, ", K=", a.size(1), ")");
    acc = acc * sa.view({m, 1}) * sb.view({1, n_pad});
    if (bias_padded.has_value()) acc = acc + bias_padded->to(at::kFloat);
    out = acc.to(out_type);
  }
  return n_pad == n ? out : out.narrow(1, 0, n).contiguous();
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("scaled_mm", &scaled_mm_cuda); }

}  // namespace lowbit::cuda
