// Reference kernel of lowbit::semi_sparse_weight_linear (the sparse24 format): the compressed weight
// decompressed, then the 2:4 GEMM lowbit::semi_sparse_mm with the weight as the sparse operand,
// y^T = W x^T. Registered at CompositeExplicitAutograd, so it serves both devices: decompress_2_4
// and semi_sparse_mm dispatch to their own CPU (checked reference) or CUDA (cuSPARSELt) kernels.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <lowbit/core/semi_sparse_linear.h>
#include <lowbit/core/sparse_2_4.h>
#include <lowbit/ops/semi_sparse_weight_checks.h>

namespace lowbit::cpu {
namespace {

using OptTensor = std::optional<at::Tensor>;

at::Tensor semi_sparse_weight_linear_ref(const at::Tensor& input, const at::Tensor& values, const at::Tensor& meta,
                                         const OptTensor& bias) {
  constexpr const char* op = "semi_sparse_weight_linear";
  const ops::QLinearDims d = ops::check_semi_sparse_weight(values, meta, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  TORCH_CHECK(input.device() == values.device(), op, ": input is on ", input.device(), ", the weight on ",
              values.device());
  const at::ScalarType dtype = input.scalar_type();
  const at::Tensor w = core::decompress_2_4(values, meta).to(dtype);  // (N, K), 2:4 along its rows
  const at::Tensor x2 = input.reshape({-1, input.size(-1)});           // (M, K)
  const OptTensor b = bias.has_value() ? OptTensor(bias->to(dtype)) : std::nullopt;
  const at::Tensor y = core::semi_sparse_mm(w, x2.t(), b, /*transpose_result=*/true);  // (M, N)
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = y.size(1);
  return y.reshape(shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("semi_sparse_weight_linear", &semi_sparse_weight_linear_ref);
}

}  // namespace lowbit::cpu
