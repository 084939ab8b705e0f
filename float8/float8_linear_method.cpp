#include <lowbit/float8/float8_linear_method.h>

namespace lowbit::float8 {

void Float8LinearMethod::set_gathered_weight(at::Tensor weight_fp8, at::Tensor weight_scale) {
  TORCH_CHECK(config_.recipe == Float8Recipe::Tensorwise, "Float8LinearMethod: a gathered fp8 weight needs the "
              "tensorwise recipe, this layer uses '", float8_recipe_name(config_.recipe), "'");
  gathered_fp8_ = std::move(weight_fp8);
  gathered_scale_ = std::move(weight_scale);
}

void Float8LinearMethod::clear_gathered_weight() {
  gathered_fp8_ = at::Tensor();
  gathered_scale_ = at::Tensor();
}

at::Tensor Float8LinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  std::optional<at::Tensor> bias;
  if (layer.bias.defined()) bias = layer.bias;
  if (gathered_fp8_.defined()) {
    return core::float8_linear_precast(input, layer.weight, gathered_fp8_, gathered_scale_, bias, config_.emulate,
                                       config_.round_scales_to_power_of_2);
  }
  return float8_linear(input, layer.weight, bias, float8_recipe_name(config_.recipe), config_.emulate,
                       config_.round_scales_to_power_of_2, config_.force_recompute_fp8_weight_in_bwd);
}

}  // namespace lowbit::float8
