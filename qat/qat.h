// Quantization-aware training for lowbit::nn::Linear: prepare installs a fake-quant linear method
// (lowbit::fake_quantize_affine, straight-through gradient); convert swaps it for the quantized
// inference method of the matching quantize_ config. Mirrors python/lowbit/qat.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include <lowbit/inference/config.h>
#include <lowbit/nn/convert.h>

namespace lowbit::qat {

// Fake quantization of one tensor: dtype "int1".."int8" / "uint1".."uint8"; granularity
// "per_token" / "per_channel" (one scale per row of the last dim) or "per_group" (group_size
// elements of it); dynamic qparams only.
struct FakeQuantizeConfig {
  std::string dtype = "int8";
  std::string granularity = "per_token";
  int64_t group_size = 0;
  bool symmetric = true;
  std::string zero_point_domain = "int";

  void validate() const;
  at::Tensor fake_quantize(const at::Tensor& x) const;
};

// Activation (optional) and weight fake quantization, and the quantize_ config convert applies.
struct QATConfig {
  std::optional<FakeQuantizeConfig> activation;
  FakeQuantizeConfig weight;
  inference::QuantizeConfig convert_to;
};

// Per-token asymmetric int8 activations, group-wise symmetric int4 weights -> int4dq.
QATConfig Int8DynActInt4WeightQATConfig(int64_t group_size = 32);
// Group-wise asymmetric uint4 weights with float zero points -> int4wo (tinygemm).
QATConfig Int4WeightOnlyQATConfig(int64_t group_size = 128);

// y = linear(fq_act(x), fq_weight(W)) + b in float32, cast to x's dtype (weight-only: the GEMM runs
// in x's dtype), exactly as python's FakeQuantizedLinear.
class FakeQuantizedLinearMethod : public nn::LinearMethod {
 public:
  explicit FakeQuantizedLinearMethod(QATConfig config) : config_(std::move(config)) {}
  std::string name() const override { return "fake_quant_" + config_.convert_to.name(); }
  at::Tensor forward(nn::LinearImpl& layer, const at::Tensor& input) override;
  const QATConfig& config() const { return config_; }

 private:
  QATConfig config_;
};

// Installs the fake-quant method on every selected plain lowbit::nn::Linear (all-or-nothing).
nn::ConvertSummary prepare(torch::nn::Module& model, const QATConfig& config, const nn::LinearFilter& filter = nullptr);
// Replaces every fake-quant method by the quantized method of its convert_to config (all-or-nothing).
nn::ConvertSummary convert(torch::nn::Module& model);

}  // namespace lowbit::qat
