#include <lowbit/inference/quantized_linear_method.h>

#include <ATen/ops/empty.h>

#include <lowbit/quant/format.h>
#include <c10/core/GradMode.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace lowbit::inference {

namespace {

std::shared_ptr<nn::LinearMethod> load_quantized_method(torch::serialize::InputArchive& archive) {
  c10::IValue config, out_features, in_features, dtype;
  archive.read("config", config);
  archive.read("out_features", out_features);
  archive.read("in_features", in_features);
  archive.read("dtype", dtype);
  const QuantizeConfig c = parse_quantize_config(config.toStringRef());
  std::vector<at::Tensor> parts;
  for (const auto& name : c.format().part_names()) {
    at::Tensor part;
    archive.read(name, part, /*is_buffer=*/true);
    parts.push_back(part);
  }
  return std::make_shared<QuantizedLinearMethod>(quantized_weight_from_parts(
      c, std::move(parts), out_features.toInt(), in_features.toInt(),
      weight_dtype_from_name(dtype.toStringRef(), "torch::load of a quantized lowbit::nn::Linear")));
}

const bool registered = nn::register_linear_method_loader("quantized", &load_quantized_method);

}  // namespace

void QuantizedLinearMethod::save(torch::serialize::OutputArchive& archive) const {
  archive.write("config", c10::IValue(weight_.config.name()));
  archive.write("out_features", c10::IValue(weight_.out_features));
  archive.write("in_features", c10::IValue(weight_.in_features));
  archive.write("dtype", c10::IValue(weight_dtype_name(weight_.dtype)));
  const auto names = weight_.part_names();
  for (size_t i = 0; i < names.size(); ++i) archive.write(names[i], weight_.parts[i], /*is_buffer=*/true);
}

at::Tensor QuantizedLinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  std::optional<at::Tensor> bias;
  if (layer.bias.defined()) bias = layer.bias;
  return quantized_linear(input, weight_, bias);
}

void release_float_weights(torch::nn::Module& root, const std::optional<c10::Device>& device) {
  std::vector<torch::nn::Module*> modules{&root};
  for (const auto& item : root.named_modules("", /*include_self=*/false)) modules.push_back(item.value().get());
  c10::NoGradGuard no_grad;
  for (torch::nn::Module* module : modules) {
    auto* layer = dynamic_cast<nn::LinearImpl*>(module);
    const auto* method = layer ? dynamic_cast<const QuantizedLinearMethod*>(&layer->method()) : nullptr;
    if (!method) continue;
    const c10::Device where = method->weight().data().device();
    if (layer->weight.numel() != 0) layer->weight.set_data(at::empty({0}, layer->weight.options().device(where)));
    if (device && layer->bias.defined()) layer->bias.set_data(layer->bias.data().to(*device));
  }
}

}  // namespace lowbit::inference
