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
  // Row-wise recipes scale W per row for the forward GEMM but per column for grad_input; a column
  // runs through every dim-0 shard, so no rank can cast its shard for backward on its own.
  TORCH_CHECK(!(enable_fsdp_float8_all_gather && recipe != Float8Recipe::Tensorwise),
              "Float8LinearConfig: enable_fsdp_float8_all_gather needs the tensorwise recipe, got '",
              float8_recipe_name(recipe), "': its per-row weight scales serve only the forward GEMM, grad_input "
              "needs per-column scales that span every dim-0 shard, so an fp8 all-gather would have to carry two "
              "fp8 copies (as many bytes as bf16); leave the flag off to all-gather these weights in high precision");
  TORCH_CHECK(!(enable_fsdp_float8_all_gather && force_recompute_fp8_weight_in_bwd),
              "Float8LinearConfig: enable_fsdp_float8_all_gather and force_recompute_fp8_weight_in_bwd together: "
              "with fp8 all-gather the weight arrives in fp8 and FSDP gathers it again for backward "
              "(reshard_after_forward=True), so there is no cast to recompute; drop one of the two");
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
