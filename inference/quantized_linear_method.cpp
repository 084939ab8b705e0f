#include <lowbit/inference/quantized_linear_method.h>

#include <ATen/ops/empty.h>
#include <c10/core/GradMode.h>

namespace lowbit::inference {

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
