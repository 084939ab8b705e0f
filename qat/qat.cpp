#include <lowbit/qat/qat.h>

#include <ATen/ops/linear.h>

#include <lowbit/inference/quantized_linear_method.h>
#include <lowbit/core/fake_quantize.h>

namespace lowbit::qat {

void FakeQuantizeConfig::validate() const {
  TORCH_CHECK(granularity == "per_token" || granularity == "per_channel" || granularity == "per_group",
              "FakeQuantizeConfig: granularity must be 'per_token', 'per_channel' or 'per_group', got '", granularity,
              "'");
  TORCH_CHECK(granularity != "per_group" || group_size >= 1, "FakeQuantizeConfig: 'per_group' needs group_size >= 1");
}

at::Tensor FakeQuantizeConfig::fake_quantize(const at::Tensor& x) const {
  std::vector<int64_t> block(x.dim(), 1);
  block.back() = granularity == "per_group" ? group_size : x.size(-1);
  return core::fake_quantize_affine(x, block, dtype, symmetric ? "symmetric" : "asymmetric", zero_point_domain);
}

QATConfig Int8DynActInt4WeightQATConfig(int64_t group_size) {
  QATConfig c;
  c.activation = FakeQuantizeConfig{"int8", "per_token", 0, false, "int"};
  c.weight = FakeQuantizeConfig{"int4", "per_group", group_size, true, "int"};
  c.convert_to = inference::Int8DynamicActivationInt4WeightConfig(group_size);
  return c;
}

QATConfig Int4WeightOnlyQATConfig(int64_t group_size) {
  QATConfig c;
  c.weight = FakeQuantizeConfig{"uint4", "per_group", group_size, false, "float"};
  c.convert_to = inference::Int4WeightOnlyConfig(group_size);
  return c;
}

at::Tensor FakeQuantizedLinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  const at::Tensor w = config_.weight.fake_quantize(layer.weight.to(at::kFloat));
  if (!config_.activation) {
    return at::linear(input, w.to(input.scalar_type()), layer.bias.defined() ? layer.bias : at::Tensor());
  }
  at::Tensor y = at::linear(config_.activation->fake_quantize(input.to(at::kFloat)), w);
  if (layer.bias.defined()) y = y.add(layer.bias.to(at::kFloat));
  return y.to(input.scalar_type());
}

nn::ConvertSummary prepare(torch::nn::Module& model, const QATConfig& config, const nn::LinearFilter& filter) {
  if (config.activation) config.activation->validate();
  config.weight.validate();
  config.convert_to.validate();
  auto skip = [&](const std::string& name, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (filter && !filter(name, layer)) return "excluded by the filter";
    if (layer.method().name() != "plain") return "has the '" + layer.method().name() + "' method, not plain";
    return inference::unsupported_reason(config.convert_to, layer.weight.size(0), layer.weight.size(1),
                                         layer.weight.scalar_type());
  };
  auto make = [&](const std::string&, nn::LinearImpl&) { return std::make_shared<FakeQuantizedLinearMethod>(config); };
  return nn::swap_linear_methods(model, skip, make, "fake_quant_" + config.convert_to.name());
}

nn::ConvertSummary convert(torch::nn::Module& model) {
  auto skip = [](const std::string&, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (!dynamic_cast<const FakeQuantizedLinearMethod*>(&layer.method())) return "not prepared for QAT";
    return std::nullopt;
  };
  auto make = [](const std::string&, nn::LinearImpl& layer) -> std::shared_ptr<nn::LinearMethod> {
    const auto& m = dynamic_cast<const FakeQuantizedLinearMethod&>(layer.method());
    return std::make_shared<inference::QuantizedLinearMethod>(
        inference::quantize_weight(layer.weight.detach(), m.config().convert_to));
  };
  nn::ConvertSummary summary = nn::swap_linear_methods(model, skip, make, "quantized");
  inference::release_float_weights(model);
  return summary;
}

}  // namespace lowbit::qat
