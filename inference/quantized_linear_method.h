// The quantized inference linear method: lowbit::nn::Linear's forward through the packed weight.
#pragma once

#include <torch/nn/module.h>

#include <optional>

#include <lowbit/inference/quantized_weight.h>
#include <lowbit/nn/linear.h>

namespace lowbit::inference {

class QuantizedLinearMethod : public nn::LinearMethod {
 public:
  explicit QuantizedLinearMethod(QuantizedWeight weight) : weight_(std::move(weight)) {}
  // The config's canonical shorthand, e.g. "int4wo-128".
  std::string name() const override { return weight_.config.name(); }
  // y = x @ dequant(W)^T + layer.bias; the layer's float weight is not read.
  at::Tensor forward(nn::LinearImpl& layer, const at::Tensor& input) override;
  const QuantizedWeight& weight() const { return weight_; }
  // torch::save / torch::load carry the packed weight (format, shape, dtype, named parts).
  std::string serialization_tag() const override { return "quantized"; }
  void save(torch::serialize::OutputArchive& archive) const override;

 private:
  QuantizedWeight weight_;
};

// For every lowbit::nn::Linear under `root` (itself included) with a QuantizedLinearMethod: frees
// the float weight (replaced by an empty tensor of the same dtype on the packed weight's device;
// layer.options keeps the shape) and, when `device` is given, moves the bias there. The packed
// weight is then the only copy, so convert functions call this last, after nothing can fail.
void release_float_weights(torch::nn::Module& root, const std::optional<c10::Device>& device = std::nullopt);

}  // namespace lowbit::inference
