// The quantized inference linear method: lowbit::nn::Linear's forward through the packed weight.
#pragma once

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

 private:
  QuantizedWeight weight_;
};

}  // namespace lowbit::inference
