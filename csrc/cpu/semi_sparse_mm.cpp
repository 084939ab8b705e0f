// CPU reference kernel of lowbit::semi_sparse_mm: checks that the sparse operand is 2:4 along its
// rows, then multiplies densely (the pruned zeros contribute exact zeros).
#include <ATen/TensorOperators.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <lowbit/core/kernel_path.h>
#include <lowbit/ops/semi_sparse_checks.h>

namespace lowbit::cpu {
namespace {

at::Tensor semi_sparse_mm_cpu(const at::Tensor& sparse, const at::Tensor& dense, const std::optional<at::Tensor>& bias,
                              bool transpose_result) {
  ops::check_semi_sparse_mm_args(sparse, dense, bias);
  core::record_kernel_path(core::KernelPath::SemiSparseMmReference);
  // The reference is strict about its input (a GPU's 2:4 GEMM would silently drop the extra values).
  const int64_t max_per_group =
      sparse.numel() == 0 ? 0 : sparse.ne(0).reshape({-1, 4}).sum(1).max().item<int64_t>();
  TORCH_CHECK(max_per_group <= 2, "semi_sparse_mm: the sparse operand is not 2:4 along its rows (a group of 4 holds ",
              max_per_group, " nonzeros); prune it with prune_2_4 first");
  if (transpose_result) {  // (sparse @ dense)^T = dense^T @ sparse^T, written contiguous (n, m)
    const at::Tensor out = at::mm(dense.t(), sparse.t());
    return bias.has_value() ? out + bias->unsqueeze(0) : out;
  }
  return bias.has_value() ? at::addmm(bias->unsqueeze(1), sparse, dense) : at::mm(sparse, dense);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("semi_sparse_mm", &semi_sparse_mm_cpu); }

}  // namespace lowbit::cpu
