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

  // FSDP float8 all-gather (lowbit::distributed::fully_shard): while set, forward uses this gathered
  // e4m3 weight and its tensorwise scale (lowbit::float8_linear_precast, no second cast) and the
  // layer's `weight` only carries the gradient. Needs the tensorwise recipe.
  void set_gathered_weight(at::Tensor weight_fp8, at::Tensor weight_scale);
  void clear_gathered_weight();
  bool has_gathered_weight() const { return gathered_fp8_.defined(); }

 private:
  Float8LinearConfig config_;
  at::Tensor gathered_fp8_, gathered_scale_;
};

}  // namespace lowbit::float8
