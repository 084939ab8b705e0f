// lowbit::optim::AdamW8bit, AdamW4bit, AdamWFp8: torch::optim::Optimizer subclasses with
// torch::optim::AdamW's semantics and low-bit states (about 2, 1 and 2 bytes per parameter
// instead of AdamW's 8). Formats: <lowbit/core/optimizer_state_formats.h>. Each step calls the
// fused op lowbit::adamw_lowbit_step_ once per parameter group, exactly as the Python face
// (lowbit.optim) does, so both faces compute the same bits.
//
//   lowbit::optim::AdamW8bit opt(model->parameters(), lowbit::optim::AdamW8bitOptions(1e-3));
//   loss.backward(); opt.step(); opt.zero_grad();
//   torch::save(opt, "opt.pt"); torch::load(opt, "opt.pt");        // LibTorch archives
//   lowbit::optim::save_state(opt, "opt.safetensors");              // the cross-face format
//                                                                    (<lowbit/optim/state_file.h>)
#pragma once

#include <torch/arg.h>
#include <torch/optim/optimizer.h>

#include <string>
#include <tuple>
#include <vector>

namespace lowbit::optim {

// Hyperparameters of one parameter group, as torch::optim::AdamWOptions plus the state options.
struct AdamWLowBitOptions : public torch::optim::OptimizerCloneableOptions<AdamWLowBitOptions> {
  AdamWLowBitOptions(double lr = 1e-3);
  TORCH_ARG(double, lr) = 1e-3;
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 1e-2;
  // Elements per quantization block (a power of 2 in [64, 4096]).
  TORCH_ARG(int64_t, block_size) = 256;
  // Round bf16 parameters stochastically (deterministic per step and element) instead of to
  // nearest even.
  TORCH_ARG(bool, bf16_stochastic_round) = false;
  // Parameters with fewer elements keep plain fp32 states.
  TORCH_ARG(int64_t, min_quantized_size) = 4096;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const AdamWLowBitOptions& lhs, const AdamWLowBitOptions& rhs);
  double get_lr() const override;
  void set_lr(const double lr) override;
};

// The defaults of each optimizer (they differ in block_size only: 256, 128, 256).
struct AdamW8bitOptions : AdamWLowBitOptions {
  AdamW8bitOptions(double lr = 1e-3);
};
struct AdamW4bitOptions : AdamWLowBitOptions {
  AdamW4bitOptions(double lr = 1e-3);
};
struct AdamWFp8Options : AdamWLowBitOptions {
  AdamWFp8Options(double lr = 1e-3);
};

// One parameter's state: the tensors of lowbit::core::AdamWLowBitState.
struct AdamWLowBitParamState : public torch::optim::OptimizerCloneableParamState<AdamWLowBitParamState> {
  TORCH_ARG(at::Tensor, step);
  TORCH_ARG(at::Tensor, exp_avg);
  TORCH_ARG(at::Tensor, exp_avg_scale);
  TORCH_ARG(at::Tensor, exp_avg_sq);
  TORCH_ARG(at::Tensor, exp_avg_sq_scale);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// The common optimizer; state_format is "8bit", "4bit" or "fp8".
class AdamWLowBit : public torch::optim::Optimizer {
 public:
  AdamWLowBit(const std::vector<torch::optim::OptimizerParamGroup>& param_groups, AdamWLowBitOptions defaults,
              std::string state_format);

  // One step for every parameter with a gradient; errors on sparse or complex gradients.
  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  const std::string& state_format() const { return state_format_; }
  // "AdamW8bit", "AdamW4bit" or "AdamWFp8".
  std::string name() const;

 private:
  std::string state_format_;
};

class AdamW8bit : public AdamWLowBit {
 public:
  explicit AdamW8bit(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                     AdamWLowBitOptions defaults = AdamW8bitOptions());
  explicit AdamW8bit(std::vector<at::Tensor> params, AdamWLowBitOptions defaults = AdamW8bitOptions());
};

class AdamW4bit : public AdamWLowBit {
 public:
  explicit AdamW4bit(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                     AdamWLowBitOptions defaults = AdamW4bitOptions());
  explicit AdamW4bit(std::vector<at::Tensor> params, AdamWLowBitOptions defaults = AdamW4bitOptions());
};

class AdamWFp8 : public AdamWLowBit {
 public:
  explicit AdamWFp8(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                    AdamWLowBitOptions defaults = AdamWFp8Options());
  explicit AdamWFp8(std::vector<at::Tensor> params, AdamWLowBitOptions defaults = AdamWFp8Options());
};

}  // namespace lowbit::optim
