// The C++ face of the low-bit AdamW optimizers: options, per-parameter state, the step (one
// lowbit::adamw_lowbit_step_ call per group) and LibTorch archive serialization.
#include <lowbit/optim/adamw_lowbit.h>

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>

#include <lowbit/core/adamw_lowbit.h>
#include <lowbit/ops/adamw_lowbit_checks.h>

namespace lowbit::optim {

AdamWLowBitOptions::AdamWLowBitOptions(double lr) : lr_(lr) {}
AdamW8bitOptions::AdamW8bitOptions(double lr) : AdamWLowBitOptions(lr) { block_size(256); }
AdamW4bitOptions::AdamW4bitOptions(double lr) : AdamWLowBitOptions(lr) { block_size(128); }
AdamWFp8Options::AdamWFp8Options(double lr) : AdamWLowBitOptions(lr) { block_size(256); }

bool operator==(const AdamWLowBitOptions& lhs, const AdamWLowBitOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.betas() == rhs.betas() && lhs.eps() == rhs.eps() &&
         lhs.weight_decay() == rhs.weight_decay() && lhs.block_size() == rhs.block_size() &&
         lhs.bf16_stochastic_round() == rhs.bf16_stochastic_round() &&
         lhs.min_quantized_size() == rhs.min_quantized_size();
}

void AdamWLowBitOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(block_size);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(bf16_stochastic_round);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(min_quantized_size);
}

void AdamWLowBitOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, block_size);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, bf16_stochastic_round);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, min_quantized_size);
}

double AdamWLowBitOptions::get_lr() const { return lr(); }
void AdamWLowBitOptions::set_lr(const double lr) { this->lr(lr); }

void AdamWLowBitParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_scale);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_scale);
}

void AdamWLowBitParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, exp_avg_scale);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, exp_avg_sq);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(at::Tensor, exp_avg_sq_scale);
}

namespace {

// The step op's own checks (ops/adamw_lowbit_checks.h), at construction: one rule for both.
void check_options(const AdamWLowBitOptions& o) {
  ops::check_adamw_hyperparameters(o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()), o.eps(), o.weight_decay());
  ops::check_block_size(o.block_size());
  TORCH_CHECK(o.min_quantized_size() >= 0, "adamw_lowbit: min_quantized_size must be >= 0, got ",
              o.min_quantized_size());
}

// The options of a group; a group given options of another optimizer type is an error.
AdamWLowBitOptions& group_options(torch::optim::OptimizerParamGroup& group) {
  auto* o = dynamic_cast<AdamWLowBitOptions*>(&group.options());
  TORCH_CHECK(o != nullptr, "lowbit::optim: a parameter group has options that are not AdamWLowBitOptions");
  return *o;
}

}  // namespace

AdamWLowBit::AdamWLowBit(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                         AdamWLowBitOptions defaults, std::string state_format)
    : Optimizer(param_groups, std::make_unique<AdamWLowBitOptions>(defaults)), state_format_(std::move(state_format)) {
  check_options(defaults);
  for (auto& group : param_groups_) check_options(group_options(group));
}

std::string AdamWLowBit::name() const {
  return state_format_ == "8bit" ? "AdamW8bit" : state_format_ == "4bit" ? "AdamW4bit" : "AdamWFp8";
}

at::Tensor AdamWLowBit::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const AdamWLowBitOptions& o = group_options(group);
    std::vector<at::Tensor> params, grads, m, ms, v, vs, steps;
    for (const at::Tensor& p : group.params()) {
      const at::Tensor& g = p.grad();
      if (!g.defined()) continue;
      TORCH_CHECK(!g.is_sparse(), name(), " does not support sparse gradients");
      TORCH_CHECK(!g.is_complex() && !p.is_complex(), name(), " does not support complex parameters or gradients");
      auto it = state_.find(p.unsafeGetTensorImpl());
      if (it == state_.end()) {
        const core::AdamWLowBitState s =
            core::adamw_lowbit_init_state(p.detach(), state_format_, o.block_size(), o.min_quantized_size());
        auto ps = std::make_unique<AdamWLowBitParamState>();
        ps->step(s.step).exp_avg(s.exp_avg).exp_avg_scale(s.exp_avg_scale).exp_avg_sq(s.exp_avg_sq);
        ps->exp_avg_sq_scale(s.exp_avg_sq_scale);
        it = state_.emplace(p.unsafeGetTensorImpl(), std::move(ps)).first;
      }
      const auto& s = static_cast<const AdamWLowBitParamState&>(*it->second);
      params.push_back(p.detach());
      grads.push_back(g);
      m.push_back(s.exp_avg());
      ms.push_back(s.exp_avg_scale());
      v.push_back(s.exp_avg_sq());
      vs.push_back(s.exp_avg_sq_scale());
      steps.push_back(s.step());
    }
    if (params.empty()) continue;
    core::adamw_lowbit_step_(params, grads, m, ms, v, vs, steps, o.lr(), std::get<0>(o.betas()),
                             std::get<1>(o.betas()), o.eps(), o.weight_decay(), state_format_, o.block_size(),
                             o.bf16_stochastic_round());
    // The op writes through raw pointers; tell autograd the parameters changed, as an in-place
    // aten op would.
    for (const at::Tensor& p : params) torch::autograd::impl::bump_version(p);
  }
  return loss;
}

void AdamWLowBit::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<AdamWLowBitParamState, AdamWLowBitOptions>(archive, *this);
}

void AdamWLowBit::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<AdamWLowBitParamState, AdamWLowBitOptions>(archive, *this);
}

AdamW8bit::AdamW8bit(const std::vector<torch::optim::OptimizerParamGroup>& param_groups, AdamWLowBitOptions defaults)
    : AdamWLowBit(param_groups, std::move(defaults), "8bit") {}
AdamW8bit::AdamW8bit(std::vector<at::Tensor> params, AdamWLowBitOptions defaults)
    : AdamW8bit({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

AdamW4bit::AdamW4bit(const std::vector<torch::optim::OptimizerParamGroup>& param_groups, AdamWLowBitOptions defaults)
    : AdamWLowBit(param_groups, std::move(defaults), "4bit") {}
AdamW4bit::AdamW4bit(std::vector<at::Tensor> params, AdamWLowBitOptions defaults)
    : AdamW4bit({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

AdamWFp8::AdamWFp8(const std::vector<torch::optim::OptimizerParamGroup>& param_groups, AdamWLowBitOptions defaults)
    : AdamWLowBit(param_groups, std::move(defaults), "fp8") {}
AdamWFp8::AdamWFp8(std::vector<at::Tensor> params, AdamWLowBitOptions defaults)
    : AdamWFp8({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

}  // namespace lowbit::optim
