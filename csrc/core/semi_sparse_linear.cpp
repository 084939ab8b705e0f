// C++ entry points of the semi-sparse training ops: names, the shape rule, the ops through the dispatcher.
#include <lowbit/core/semi_sparse_linear.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

SemiSparseGradient parse_semi_sparse_gradient(const std::string& name) {
  if (name == "ste") return SemiSparseGradient::Ste;
  if (name == "masked") return SemiSparseGradient::Masked;
  TORCH_CHECK(false, "semi-sparse training: unknown gradient '", name, "'; allowed: 'ste', 'masked'");
}

std::string semi_sparse_gradient_name(SemiSparseGradient gradient) {
  return gradient == SemiSparseGradient::Ste ? "ste" : "masked";
}

std::optional<std::string> semi_sparse_unsupported_reason(int64_t out_features, int64_t in_features,
                                                          c10::DeviceType device, bool activation) {
  const std::string shape = "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features);
  if (device == c10::DeviceType::CUDA) {
    if (in_features % kCudaSemiSparseMultiple != 0 || out_features % kCudaSemiSparseMultiple != 0) {
      return shape + ": the cuSPARSELt 2:4 GEMMs need both features to be multiples of " +
             std::to_string(kCudaSemiSparseMultiple) + " (this layer stays dense)";
    }
    return std::nullopt;
  }
  if (device != c10::DeviceType::CPU) {
    return std::string("2:4 training runs on CPU (reference) and CUDA, not on ") + c10::DeviceTypeName(device);
  }
  // CPU: whole 4x4 tiles of the pruned operand: W (out, in), or the input's (tokens, in).
  if (in_features % 4 != 0 || (!activation && out_features % 4 != 0)) {
    return shape + (activation ? ": in_features must be a multiple of 4 (4x4 tiles of the input)"
                               : ": both must be multiples of 4 (4x4 tiles of the weight)");
  }
  return std::nullopt;
}

at::Tensor semi_sparse_mm(const at::Tensor& sparse, const at::Tensor& dense, const std::optional<at::Tensor>& bias,
                          bool transpose_result) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, bool)>(
      "lowbit::semi_sparse_mm");
  return op.call(sparse, dense, bias, transpose_result);
}

at::Tensor semi_sparse_linear(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                              const std::string& algorithm, const std::string& gradient) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                           c10::string_view, c10::string_view)>("lowbit::semi_sparse_linear");
  return op.call(input, weight, bias, algorithm, gradient);
}

at::Tensor semi_sparse_activation_linear(const at::Tensor& input, const at::Tensor& weight,
                                         const std::optional<at::Tensor>& bias, const std::string& algorithm,
                                         const std::string& gradient) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                           c10::string_view, c10::string_view)>("lowbit::semi_sparse_activation_linear");
  return op.call(input, weight, bias, algorithm, gradient);
}

}  // namespace lowbit::core
