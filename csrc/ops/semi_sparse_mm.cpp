// Schema and shape (Meta) kernel of lowbit::semi_sparse_mm, the 2:4 GEMM under the training ops.
#include <lowbit/core/semi_sparse_linear.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/semi_sparse_checks.h>

namespace lowbit::ops {
namespace {

at::Tensor semi_sparse_mm_meta(const at::Tensor& sparse, const at::Tensor& dense, const std::optional<at::Tensor>& bias,
                               bool transpose_result) {
  check_semi_sparse_mm_args(sparse, dense, bias);
  const c10::SymInt m = sparse.sym_size(0), n = dense.sym_size(1);
  return transpose_result ? at::empty_symint({n, m}, sparse.options()) : at::empty_symint({m, n}, sparse.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("semi_sparse_mm(Tensor sparse, Tensor dense, Tensor? bias=None, bool transpose_result=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl("semi_sparse_mm", &semi_sparse_mm_meta); }

}  // namespace lowbit::ops
