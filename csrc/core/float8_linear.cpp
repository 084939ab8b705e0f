// C++ entry points of the float8_linear ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/float8_linear.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

Float8Recipe parse_float8_recipe(const std::string& name) {
  if (name == "tensorwise") return Float8Recipe::Tensorwise;
  if (name == "rowwise") return Float8Recipe::Rowwise;
  if (name == "rowwise_with_gw_hp") return Float8Recipe::RowwiseWithGwHp;
  TORCH_CHECK(false, "float8: unknown recipe '", name, "'; allowed: 'tensorwise', 'rowwise', 'rowwise_with_gw_hp'");
}

std::string float8_recipe_name(Float8Recipe recipe) {
  switch (recipe) {
    case Float8Recipe::Tensorwise: return "tensorwise";
    case Float8Recipe::Rowwise: return "rowwise";
    case Float8Recipe::RowwiseWithGwHp: return "rowwise_with_gw_hp";
  }
  return "";
}

at::Tensor float8_linear(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         const std::string& recipe, bool emulate, bool round_scales_to_power_of_2,
                         bool recompute_weight_in_bwd) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                           c10::string_view, bool, bool, bool)>("lowbit::float8_linear");
  return op.call(input, weight, bias, recipe, emulate, round_scales_to_power_of_2, recompute_weight_in_bwd);
}

at::Tensor float8_linear_precast(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& weight_fp8,
                                 const at::Tensor& weight_scale, const std::optional<at::Tensor>& bias, bool emulate,
                                 bool round_scales_to_power_of_2) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const std::optional<at::Tensor>&, bool, bool)>("lowbit::float8_linear_precast");
  return op.call(input, weight, weight_fp8, weight_scale, bias, emulate, round_scales_to_power_of_2);
}

}  // namespace lowbit::core
