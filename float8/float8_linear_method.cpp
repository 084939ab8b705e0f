#include <lowbit/float8/float8_linear_method.h>

namespace lowbit::float8 {

at::Tensor Float8LinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  std::optional<at::Tensor> bias;
  if (layer.bias.defined()) bias = layer.bias;
  return float8_linear(input, layer.weight, bias, float8_recipe_name(config_.recipe), config_.emulate,
                       config_.round_scales_to_power_of_2, config_.force_recompute_fp8_weight_in_bwd);
}

}  // namespace lowbit::float8
