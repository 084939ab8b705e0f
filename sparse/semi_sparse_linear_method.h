// The 2:4 training linear method: lowbit::nn::Linear's forward through lowbit::semi_sparse_linear
// (weight pruned every call) or lowbit::semi_sparse_activation_linear (input pruned every call).
#pragma once

#include <lowbit/nn/linear.h>
#include <lowbit/sparse/config.h>

namespace lowbit::sparse {

class SemiSparseLinearMethod : public nn::LinearMethod {
 public:
  explicit SemiSparseLinearMethod(SemiSparseTrainingConfig config) : config_(config) { config_.validate(); }
  // "semi_sparse_weight" or "semi_sparse_activation"
  std::string name() const override { return "semi_sparse_" + semi_sparse_target_name(config_.target); }
  at::Tensor forward(nn::LinearImpl& layer, const at::Tensor& input) override;
  const SemiSparseTrainingConfig& config() const { return config_; }

 private:
  SemiSparseTrainingConfig config_;
};

}  // namespace lowbit::sparse
