#include <lowbit/qat/qat.h>

#include <lowbit/inference/quantize.h>
#include <lowbit/inference/quantized_linear_method.h>

namespace lowbit::qat {

at::Tensor FakeQuantizedLinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  std::optional<core::FakeQuantSpec> act;
  if (config_.activation) act = config_.activation->spec();
  std::optional<at::Tensor> bias;
  if (layer.bias.defined()) bias = layer.bias;
  return core::fake_quantized_linear(input, layer.weight, bias, config_.weight.spec(), act);
}

std::optional<std::string> prepare_skip_reason(const std::string& name, const std::string& method, bool quantized,
                                               bool filter_accepts, const QATConfig& config, int64_t out_features,
                                               int64_t in_features, at::ScalarType dtype) {
  if (auto reason = inference::selection_skip_reason(name, method, quantized, filter_accepts, {})) return reason;
  if (!config.convert_to.defined()) return std::nullopt;
  return inference::unsupported_reason(config.convert_to, out_features, in_features, dtype);
}

nn::ConvertSummary prepare(torch::nn::Module& model, const QATConfig& config, const nn::LinearFilter& filter) {
  config.validate();
  auto skip = [&](const std::string& name, const nn::LinearImpl& layer) -> std::optional<std::string> {
    const bool quantized = dynamic_cast<const inference::QuantizedLinearMethod*>(&layer.method()) != nullptr;
    return prepare_skip_reason(name, layer.method().name(), quantized, !filter || filter(name, layer), config,
                               layer.options.out_features(), layer.options.in_features(), layer.weight.scalar_type());
  };
  auto make = [&](const std::string&, nn::LinearImpl&) { return std::make_shared<FakeQuantizedLinearMethod>(config); };
  return nn::swap_linear_methods(model, skip, make, config.method_name());
}

nn::ConvertSummary convert(torch::nn::Module& model) {
  auto skip = [](const std::string&, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (!dynamic_cast<const FakeQuantizedLinearMethod*>(&layer.method())) return "not prepared for QAT";
    return std::nullopt;
  };
  auto make = [](const std::string& name, nn::LinearImpl& layer) -> std::shared_ptr<nn::LinearMethod> {
    const auto& m = dynamic_cast<const FakeQuantizedLinearMethod&>(layer.method());
    TORCH_CHECK(m.config().convert_to.defined(), "qat::convert: '", name, "' was prepared with a custom "
                "FakeQuantizeConfig pair, which no quantize_ config implements; prepare with "
                "Int8DynActInt4WeightQATConfig or Int4WeightOnlyQATConfig; the model was not changed");
    return std::make_shared<inference::QuantizedLinearMethod>(
        inference::quantize_weight(layer.weight.detach(), m.config().convert_to));
  };
  nn::ConvertSummary summary = nn::swap_linear_methods(model, skip, make, "quantized");
  inference::release_float_weights(model);
  return summary;
}

}  // namespace lowbit::qat
