// The quantized weight as dispatcher ops, so the Python face builds and runs exactly the C++
// description: quantize_weight makes the parts, quantized_linear routes to the format's op.
#include <torch/library.h>

#include <lowbit/inference/quantized_weight.h>

namespace lowbit::inference {
namespace {

std::vector<at::Tensor> quantize_weight_op(const at::Tensor& weight, c10::string_view config) {
  return quantize_weight(weight, parse_quantize_config(std::string(config))).parts;
}

// Composite (implicit): under torch.compile it traces into the format's own lowbit:: op.
at::Tensor quantized_linear_op(const at::Tensor& input, at::TensorList parts, c10::string_view config,
                               const std::optional<at::Tensor>& bias) {
  QuantizedWeight w;
  w.config = parse_quantize_config(std::string(config));
  w.parts = parts.vec();
  return quantized_linear(input, w, bias);
}

at::Tensor dequantize_weight_op(at::TensorList parts, c10::string_view config, int64_t out_features,
                                int64_t in_features, at::ScalarType dtype) {
  return dequantize_weight(quantized_weight_from_parts(parse_quantize_config(std::string(config)), parts.vec(),
                                                       out_features, in_features, dtype));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("quantize_weight(Tensor weight, str config) -> Tensor[]");
  m.def("quantized_linear(Tensor input, Tensor[] parts, str config, Tensor? bias=None) -> Tensor");
  m.def("dequantize_weight(Tensor[] parts, str config, int out_features, int in_features, ScalarType dtype) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("quantize_weight", &quantize_weight_op);
  m.impl("dequantize_weight", &dequantize_weight_op);
}

TORCH_LIBRARY_IMPL(lowbit, CompositeImplicitAutograd, m) { m.impl("quantized_linear", &quantized_linear_op); }

}  // namespace lowbit::inference
