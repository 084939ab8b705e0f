// The autograd kernel every quantized linear op registers (at the Autograd key): a straight-through
// estimate, so adapters and upstream layers train through frozen quantized layers in both faces.
//   grad_input = grad_output @ dequant(W)   (the weight's quantization, and the activations' where
//                                            the format quantizes them on the fly, pass the
//                                            gradient unchanged)
//   grad_bias  = grad_output summed over every dim but the last
// The packed parts are frozen: one that requires grad is an error, never a silently missing gradient.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <lowbit/quant/config.h>

namespace lowbit::ops {

// What backward needs to rebuild the dense weight: the format (by its canonical name) and its parts.
struct FrozenQuantizedWeight {
  std::string config;
  std::vector<at::Tensor> parts;
  int64_t out_features = 0;
};

class QuantizedLinearFunction : public torch::autograd::Function<QuantizedLinearFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const std::optional<at::Tensor>& bias, const FrozenQuantizedWeight& weight,
                            const std::function<at::Tensor()>& run_below_autograd);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

void check_frozen_parts(const char* op, at::TensorList parts);

// The body of each format's autograd kernel. `run` calls the op below autograd; `config_name`
// (called only when a gradient is needed) names the format for backward.
template <typename Run, typename ConfigName>
at::Tensor quantized_linear_autograd(const char* op, const at::Tensor& input, const std::optional<at::Tensor>& bias,
                                     std::vector<at::Tensor> parts, int64_t out_features, Run&& run,
                                     ConfigName&& config_name) {
  check_frozen_parts(op, parts);
  const bool needs_grad =
      at::GradMode::is_enabled() && (input.requires_grad() || (bias.has_value() && bias->requires_grad()));
  if (!needs_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return run();
  }
  FrozenQuantizedWeight weight{config_name(), std::move(parts), out_features};
  return QuantizedLinearFunction::apply(input, bias, weight, std::function<at::Tensor()>(run));
}

}  // namespace lowbit::ops
