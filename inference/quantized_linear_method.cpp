#include <lowbit/inference/quantized_linear_method.h>

namespace lowbit::inference {

at::Tensor QuantizedLinearMethod::forward(nn::LinearImpl& layer, const at::Tensor& input) {
  std::optional<at::Tensor> bias;
  if (layer.bias.defined()) bias = layer.bias;
  return quantized_linear(input, weight_, bias);
}

}  // namespace lowbit::inference
