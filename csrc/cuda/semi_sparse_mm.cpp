// CUDA kernel of lowbit::semi_sparse_mm through cuSPARSELt, as ATen ships it: at::_cslt_compress
// packs the 2:4 operand (kept values + metadata in cuSPARSELt's own layout), at::_cslt_sparse_mm
// multiplies it by the dense operand on the sparse tensor cores (float32 accumulation).
//
// Layout facts relied on (aten/src/ATen/native/sparse/cuda/cuSPARSELtOps.cpp): the compressed
// operand is row-major (m, k); the dense operand must be contiguous (k, n) or the transpose of a
// contiguous (n, k); the bias (m,) is added to each row of the product; transpose_result returns
// the product's transpose as a contiguous (n, m). Every dim is zero-padded up to a multiple of
// kCudaSemiSparseMultiple where it is not one (zeros keep the operand 2:4 and add nothing), and the
// padding is sliced off the result; the training ops never pad the weight (their shape rule).
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/_cslt_compress.h>
#include <ATen/ops/_cslt_sparse_mm.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <lowbit/core/kernel_path.h>
#include <lowbit/ops/semi_sparse_checks.h>

namespace lowbit::cuda {
namespace {

int64_t padded(int64_t x) {
  return (x + core::kCudaSemiSparseMultiple - 1) / core::kCudaSemiSparseMultiple * core::kCudaSemiSparseMultiple;
}

// t (rows, cols) zero-padded to (rows_to, cols_to); t itself when nothing is missing.
at::Tensor pad_2d(const at::Tensor& t, int64_t rows_to, int64_t cols_to) {
  if (t.size(0) == rows_to && t.size(1) == cols_to) return t;
  return at::constant_pad_nd(t, {0, cols_to - t.size(1), 0, rows_to - t.size(0)}, 0);
}

bool aligned_16(const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.const_data_ptr()) % 16 == 0; }

at::Tensor semi_sparse_mm_cuda(const at::Tensor& sparse, const at::Tensor& dense, const std::optional<at::Tensor>& bias,
                               bool transpose_result) {
  ops::check_semi_sparse_mm_args(sparse, dense, bias);
  TORCH_CHECK(sparse.scalar_type() == at::kHalf || sparse.scalar_type() == at::kBFloat16,
              "semi_sparse_mm: cuSPARSELt's 2:4 GEMM takes float16 or bfloat16 on CUDA, got ", sparse.scalar_type(),
              "; cast the operands (the CPU reference takes float32 and float64 too)");
  const c10::cuda::CUDAGuard guard(sparse.device());
  const auto* props = at::cuda::getCurrentDeviceProperties();
  TORCH_CHECK(props->major >= 8, "semi_sparse_mm: 2:4 sparse tensor cores need compute capability 8.0 or newer, this ",
              "GPU (", props->name, ") is ", props->major, ".", props->minor, "; train this model dense");
  const int64_t m = sparse.size(0), k = sparse.size(1), n = dense.size(1);
  if (m == 0 || n == 0 || k == 0) {
    core::record_kernel_path(core::KernelPath::SemiSparseMmEmpty);
    const at::Tensor out = at::zeros(transpose_result ? std::vector<int64_t>{n, m} : std::vector<int64_t>{m, n},
                                      sparse.options());
    if (!bias.has_value()) return out;
    return transpose_result ? out + bias->unsqueeze(0) : out + bias->unsqueeze(1);
  }
  const int64_t mp = padded(m), kp = padded(k), np = padded(n);
  core::record_kernel_path(mp == m && kp == k && np == n ? core::KernelPath::SemiSparseMmCusparselt
                                                         : core::KernelPath::SemiSparseMmCusparseltPadded);
  at::Tensor a = pad_2d(sparse, mp, kp).contiguous();
  if (!aligned_16(a)) a = a.clone();
  // Dense: contiguous (k, n) or a transposed contiguous (n, k), 16-byte aligned.
  at::Tensor b = pad_2d(dense, kp, np);  // a fresh contiguous tensor when padded
  if (!(b.is_contiguous() || b.t().is_contiguous())) b = b.contiguous();
  if (!aligned_16(b)) b = b.clone(at::MemoryFormat::Contiguous);
  std::optional<at::Tensor> bias_p;
  if (bias.has_value()) bias_p = mp == m ? bias->contiguous() : at::constant_pad_nd(*bias, {0, mp - m}, 0);

  const at::Tensor packed = at::_cslt_compress(a);
  at::Tensor out = at::_cslt_sparse_mm(packed, b, bias_p, std::nullopt, std::nullopt, transpose_result);
  // out is (mp, np), or (np, mp) with transpose_result; slice the padding off.
  if (mp != m || np != n) {
    out = transpose_result ? out.narrow(0, 0, n).narrow(1, 0, m) : out.narrow(0, 0, m).narrow(1, 0, n);
    out = out.contiguous();
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("semi_sparse_mm", &semi_sparse_mm_cuda); }

}  // namespace lowbit::cuda
