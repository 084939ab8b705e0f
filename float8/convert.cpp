#include <lowbit/float8/convert.h>

#include <lowbit/core/device.h>
#include <lowbit/float8/float8_linear_method.h>

namespace lowbit::float8 {

std::optional<std::string> float8_skip_reason(const std::string& name, const std::string& method, bool filter_accepts,
                                              int64_t in, int64_t out, const c10::Device& device,
                                              const Float8LinearConfig& config) {
  if (!filter_accepts) return "excluded by the filter";
  if (method.rfind("float8_", 0) == 0) return "already float8 (" + method + ")";
  if (method != "plain") return "has the '" + method + "' method, not plain";
  if (!config.pad_inner_dim && (in % 16 != 0 || out % 16 != 0)) {
    return "in_features=" + std::to_string(in) + ", out_features=" + std::to_string(out) +
           " are not multiples of 16 (set pad_inner_dim to convert it anyway)";
  }
  TORCH_CHECK(config.emulate || core::has_fp8_gemm(device), "convert_to_float8_training: layer '",
              name.empty() ? "<root>" : name, "' is on ", device, ", which has no fp8 GEMM (needs a CUDA GPU of compute "
              "capability 8.9+ and lowbit built with CUDA); use Float8LinearConfig with emulate=true (emulate=True in Python), or move the model "
              "to such a GPU first; the model was not changed");
  return std::nullopt;
}

nn::ConvertSummary convert_to_float8_training(torch::nn::Module& model, const Float8LinearConfig& config,
                                              const nn::LinearFilter& filter) {
  config.validate();
  auto skip = [&](const std::string& name, const nn::LinearImpl& layer) -> std::optional<std::string> {
    return float8_skip_reason(name, layer.method().name(), !filter || filter(name, layer), layer.options.in_features(),
                              layer.options.out_features(), layer.weight.device(), config);
  };
  auto make = [&](const std::string&, nn::LinearImpl&) { return std::make_shared<Float8LinearMethod>(config); };
  return nn::swap_linear_methods(model, skip, make, "float8_" + float8_recipe_name(config.recipe));
}

}  // namespace lowbit::float8
