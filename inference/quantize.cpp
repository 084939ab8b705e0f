#include <lowbit/inference/quantize.h>

#include <lowbit/inference/quantized_linear_method.h>

namespace lowbit::inference {
namespace {

bool has_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix || (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
                            name[prefix.size()] == '.');
}

}  // namespace

std::optional<std::string> selection_skip_reason(const std::string& name, const std::string& method, bool quantized,
                                                 bool filter_accepts,
                                                 const std::vector<std::string>& modules_to_not_convert) {
  for (const auto& prefix : modules_to_not_convert) {
    if (has_prefix(name, prefix)) return "in modules_to_not_convert ('" + prefix + "')";
  }
  if (!filter_accepts) return "excluded by the filter";
  if (quantized) return "already quantized (" + method + ")";
  if (method != "plain") return "has the '" + method + "' method, not plain";
  return std::nullopt;
}

std::optional<std::string> layer_skip_reason(const std::string& name, const nn::LinearImpl& layer,
                                             const QuantizeOptions& options) {
  const bool quantized = dynamic_cast<const QuantizedLinearMethod*>(&layer.method()) != nullptr;
  const bool accepts = !options.filter || options.filter(name, layer);
  return selection_skip_reason(name, layer.method().name(), quantized, accepts, options.modules_to_not_convert);
}

nn::ConvertSummary quantize_(torch::nn::Module& model, const QuantizeConfig& config, const QuantizeOptions& options) {
  config.validate();
  auto skip = [&](const std::string& name, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (auto reason = layer_skip_reason(name, layer, options)) return reason;
    return unsupported_reason(config, layer.options.out_features(), layer.options.in_features(),
                              layer.weight.scalar_type());
  };
  auto make = [&](const std::string&, nn::LinearImpl& layer) -> std::shared_ptr<nn::LinearMethod> {
    const at::Tensor w = options.device ? layer.weight.detach().to(*options.device) : layer.weight.detach();
    return std::make_shared<QuantizedLinearMethod>(quantize_weight(w, config));
  };
  nn::ConvertSummary summary = nn::swap_linear_methods(model, skip, make, config.name());
  // After every weight is quantized (so failures change nothing): biases follow their packed
  // weights to `device`, and the float weights go.
  release_float_weights(model, options.device);
  return summary;
}

nn::ConvertSummary quantize_(torch::nn::Module& model, const std::string& shorthand, const QuantizeOptions& options) {
  return quantize_(model, parse_quantize_config(shorthand), options);
}

}  // namespace lowbit::inference
