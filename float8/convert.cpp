#include <lowbit/float8/convert.h>

#include <lowbit/float8/float8_linear_method.h>

namespace lowbit::float8 {

nn::ConvertSummary convert_to_float8_training(torch::nn::Module& model, const Float8LinearConfig& config,
                                              const nn::LinearFilter& filter) {
  config.validate();
  auto skip = [&](const std::string& name, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (filter && !filter(name, layer)) return "excluded by the filter";
    if (dynamic_cast<const Float8LinearMethod*>(&layer.method())) return "already float8";
    const int64_t in = layer.options.in_features(), out = layer.options.out_features();
    if (!config.pad_inner_dim && (in % 16 != 0 || out % 16 != 0)) {
      return "in_features=" + std::to_string(in) + ", out_features=" + std::to_string(out) +
             " are not multiples of 16 (set pad_inner_dim to convert it anyway)";
    }
    TORCH_CHECK(config.emulate || layer.weight.is_cuda(), "convert_to_float8_training: layer '", name,
                "' is on ", layer.weight.device(), ", which has no fp8 GEMM; use Float8LinearConfig with emulate=true, "
                "or move the model to a GPU with fp8 tensor cores first");
    return std::nullopt;
  };
  auto make = [&](const std::string&, nn::LinearImpl&) { return std::make_shared<Float8LinearMethod>(config); };
  return nn::swap_linear_methods(model, skip, make, "float8_" + float8_recipe_name(config.recipe));
}

}  // namespace lowbit::float8
