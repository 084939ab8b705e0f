#include <lowbit/float8/config.h>

#include <c10/util/Exception.h>

#include <sstream>

namespace lowbit::float8 {

Float8LinearConfig Float8LinearConfig::from_recipe_name(const std::string& name) {
  Float8LinearConfig config;
  config.recipe = parse_float8_recipe(name);
  config.round_scales_to_power_of_2 = config.recipe != Float8Recipe::Tensorwise;
  return config;
}

void Float8LinearConfig::validate() const {
  TORCH_CHECK(!(force_recompute_fp8_weight_in_bwd && recipe != Float8Recipe::Tensorwise),
              "Float8LinearConfig: force_recompute_fp8_weight_in_bwd applies to the tensorwise recipe only (the "
              "rowwise recipes always cast the weight again in backward)");
}

std::string Float8LinearConfig::to_string() const {
  auto b = [](bool v) { return v ? "True" : "False"; };
  std::ostringstream out;
  out << "Float8LinearConfig(recipe='" << float8_recipe_name(recipe) << "', emulate=" << b(emulate)
      << ", pad_inner_dim=" << b(pad_inner_dim)
      << ", force_recompute_fp8_weight_in_bwd=" << b(force_recompute_fp8_weight_in_bwd)
      << ", enable_fsdp_float8_all_gather=" << b(enable_fsdp_float8_all_gather)
      << ", round_scales_to_power_of_2=" << b(round_scales_to_power_of_2) << ")";
  return out.str();
}

}  // namespace lowbit::float8
