// The float8 training linear method: lowbit::nn::Linear's forward through lowbit::float8_linear.
#pragma once

#include <lowbit/float8/config.h>
#include <lowbit/nn/linear.h>

namespace lowbit::float8 {

class Float8LinearMethod : public nn::LinearMethod {
 public:
  explicit Float8LinearMethod(Float8LinearConfig config) : config_(config) { config_.validate(); }
  std::string name() const override { return "float8_" + float8_recipe_name(config_.recipe); }
  at::Tensor forward(nn::LinearImpl& layer, const at::Tensor& input) override;
  const Float8LinearConfig& config() const { return config_; }

 private:
  Float8LinearConfig config_;
};

}  // namespace lowbit::float8
