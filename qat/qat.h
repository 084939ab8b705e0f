// Quantization-aware training for lowbit::nn::Linear: prepare installs a fake-quant linear method
// (lowbit::fake_quantized_linear: the affine ops with a straight-through gradient); convert swaps it
// for the quantized inference method of the config's quantize_ format. The Python face
// (lowbit.qat) swaps nn.Linear modules and calls the same op, configs and rules.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

#include <lowbit/nn/convert.h>
#include <lowbit/qat/config.h>

namespace lowbit::qat {

// y = fake_quantized_linear(x, W, b) under the config: what the converted layer will compute.
class FakeQuantizedLinearMethod : public nn::LinearMethod {
 public:
  explicit FakeQuantizedLinearMethod(QATConfig config) : config_(std::move(config)) { config_.validate(); }
  std::string name() const override { return config_.method_name(); }
  at::Tensor forward(nn::LinearImpl& layer, const at::Tensor& input) override;
  const QATConfig& config() const { return config_; }

 private:
  QATConfig config_;
};

// The rule prepare applies to one layer (both faces): the selection rule of quantize_ (filter,
// plain method), then whether convert_to's format can take an (out_features, in_features) weight
// of `dtype`. nullopt: prepare it.
std::optional<std::string> prepare_skip_reason(const std::string& name, const std::string& method, bool quantized,
                                               bool filter_accepts, const QATConfig& config, int64_t out_features,
                                               int64_t in_features, at::ScalarType dtype);

// Installs the fake-quant method on every selected plain lowbit::nn::Linear (all-or-nothing).
nn::ConvertSummary prepare(torch::nn::Module& model, const QATConfig& config, const nn::LinearFilter& filter = nullptr);
// Replaces every fake-quant method by the quantized method of its convert_to config (all-or-nothing:
// every weight is quantized before any method changes; a custom config pair is an error).
nn::ConvertSummary convert(torch::nn::Module& model);

}  // namespace lowbit::qat
