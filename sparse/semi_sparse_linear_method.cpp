#include <lowbit/sparse/semi_sparse_linear_method.h>

namespace lowbit::sparse {

at::Tensor SemiSparseLinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  std::optional<at::Tensor> bias;
  if (layer.bias.defined()) bias = layer.bias;
  const std::string algorithm = core::prune_algorithm_name(config_.algorithm);
  const std::string gradient = core::semi_sparse_gradient_name(config_.gradient);
  if (config_.target == SemiSparseTarget::Activation)
    return core::semi_sparse_activation_linear(input, layer.weight, bias, algorithm, gradient);
  return core::semi_sparse_linear(input, layer.weight, bias, algorithm, gradient);
}

}  // namespace lowbit::sparse
