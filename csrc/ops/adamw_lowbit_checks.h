// Argument checks and state layouts of lowbit::adamw_lowbit_step_ / adamw_lowbit_init_state,
// shared by the init op and the Meta, CPU and CUDA step kernels, so every backend accepts the
// same states and rejects the same inputs with the same message.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <vector>

#include <lowbit/core/adamw_math.h>
#include <lowbit/core/optimizer_state_formats.h>

namespace lowbit::ops {

inline core::StateFormat parse_state_format(c10::string_view s) {
  if (s == "8bit") return core::StateFormat::k8bit;
  if (s == "4bit") return core::StateFormat::k4bit;
  if (s == "fp8") return core::StateFormat::kFp8;
  TORCH_CHECK(false, "adamw_lowbit: unknown state_format '", s, "'; allowed: '8bit', '4bit', 'fp8'");
}

inline void check_block_size(int64_t block_size) {
  TORCH_CHECK(block_size >= 64 && block_size <= 4096 && (block_size & (block_size - 1)) == 0,
              "adamw_lowbit: block_size must be a power of 2 in [64, 4096], got ", block_size);
}

inline void check_adamw_hyperparameters(double lr, double beta1, double beta2, double eps, double weight_decay) {
  TORCH_CHECK(lr >= 0.0, "adamw_lowbit: invalid learning rate ", lr, " (must be >= 0)");
  TORCH_CHECK(beta1 >= 0.0 && beta1 < 1.0, "adamw_lowbit: invalid beta1 ", beta1, " (must be in [0, 1))");
  TORCH_CHECK(beta2 >= 0.0 && beta2 < 1.0, "adamw_lowbit: invalid beta2 ", beta2, " (must be in [0, 1))");
  TORCH_CHECK(eps >= 0.0, "adamw_lowbit: invalid eps ", eps, " (must be >= 0)");
  TORCH_CHECK(weight_decay >= 0.0, "adamw_lowbit: invalid weight_decay ", weight_decay, " (must be >= 0)");
}

inline void check_param_dtype(const at::Tensor& param, size_t index) {
  TORCH_CHECK(!param.is_complex(), "adamw_lowbit: parameter ", index,
              " is complex; the low-bit AdamW optimizers support real float32 and bfloat16 parameters only");
  TORCH_CHECK(param.scalar_type() == at::kFloat || param.scalar_type() == at::kBFloat16, "adamw_lowbit: parameter ",
              index, " has dtype ", param.scalar_type(), "; allowed: torch.float32, torch.bfloat16");
}

// Sizes and dtypes of one parameter's state tensors.
struct StateSpec {
  core::StateLayout layout;
  at::ScalarType code_dtype;  // of exp_avg and exp_avg_sq
  int64_t exp_avg_numel, exp_avg_scale_numel, exp_avg_sq_numel, exp_avg_sq_scale_numel;
};

// The state of a parameter of `sizes` with `numel` elements stored as `layout`.
inline StateSpec state_spec(core::StateLayout layout, at::IntArrayRef sizes, int64_t numel, int64_t block_size) {
  using core::StateLayout;
  const int64_t blocks = core::num_blocks(numel, block_size);
  switch (layout) {
    case StateLayout::kFloat32: return {layout, at::kFloat, numel, 0, numel, 0};
    case StateLayout::kDynamicTree8: return {layout, at::kByte, numel, blocks, numel, blocks};
    case StateLayout::kFp8: return {layout, at::kFloat8_e4m3fn, numel, blocks, numel, blocks};
    case StateLayout::k4bitBlockwise: return {layout, at::kByte, (numel + 1) / 2, blocks, (numel + 1) / 2, blocks};
    case StateLayout::k4bitRank1: {
      const core::MatrixShape m = core::rank1_matrix_shape(sizes[0], numel);
      return {layout, at::kByte, (numel + 1) / 2, blocks, (numel + 1) / 2, m.rows + m.cols};
    }
  }
  TORCH_CHECK(false, "adamw_lowbit: bad state layout");
}

// The layout a quantized state of `format` has for a parameter of these sizes.
inline core::StateLayout quantized_layout(core::StateFormat format, at::IntArrayRef sizes, int64_t numel,
                                          int64_t block_size) {
  switch (format) {
    case core::StateFormat::k8bit: return core::StateLayout::kDynamicTree8;
    case core::StateFormat::kFp8: return core::StateLayout::kFp8;
    case core::StateFormat::k4bit:
      return core::use_rank1_second_moment(static_cast<int64_t>(sizes.size()), sizes.empty() ? 1 : sizes[0], numel,
                                           block_size)
                 ? core::StateLayout::k4bitRank1
                 : core::StateLayout::k4bitBlockwise;
  }
  TORCH_CHECK(false, "adamw_lowbit: bad state format");
}

inline bool has_symbolic_sizes(const at::Tensor& t) {
  return t.defined() && t.unsafeGetTensorImpl()->has_symbolic_sizes_strides();
}

// Validates the i-th parameter, its gradient and its state; returns how the state is stored
// (fp32 when exp_avg is float32, else the format's quantized layout). Under torch.compile with
// dynamic shapes (symbolic sizes, Meta kernel only) the size and layout checks are left to the
// real kernel, which runs them on concrete tensors.
inline core::StateLayout check_param_state(size_t i, const at::Tensor& param, const at::Tensor& grad,
                                           const at::Tensor& exp_avg, const at::Tensor& exp_avg_scale,
                                           const at::Tensor& exp_avg_sq, const at::Tensor& exp_avg_sq_scale,
                                           const at::Tensor& step, core::StateFormat format, int64_t block_size) {
  check_param_dtype(param, i);
  const bool symbolic = has_symbolic_sizes(param) || has_symbolic_sizes(grad) || has_symbolic_sizes(exp_avg) ||
                        has_symbolic_sizes(exp_avg_scale) || has_symbolic_sizes(exp_avg_sq) ||
                        has_symbolic_sizes(exp_avg_sq_scale) || has_symbolic_sizes(step);
  TORCH_CHECK(symbolic || param.is_contiguous(), "adamw_lowbit: parameter ", i, " is not contiguous; the fused step updates ",
              "parameters in place and needs them contiguous");
  TORCH_CHECK(grad.defined(), "adamw_lowbit: gradient ", i, " is undefined (leave parameters without a gradient ",
              "out of the call)");
  TORCH_CHECK(!grad.is_sparse() && grad.layout() == at::kStrided, "adamw_lowbit: gradient ", i,
              " is sparse; the low-bit AdamW optimizers support dense gradients only");
  TORCH_CHECK(!grad.is_complex(), "adamw_lowbit: gradient ", i, " is complex; only real gradients are supported");
  TORCH_CHECK(grad.scalar_type() == param.scalar_type(), "adamw_lowbit: gradient ", i, " has dtype ",
              grad.scalar_type(), " but its parameter has dtype ", param.scalar_type());
  TORCH_CHECK(grad.sym_sizes() == param.sym_sizes(), "adamw_lowbit: gradient ", i, " has shape ",
              grad.sym_sizes(), " but its parameter has shape ", param.sym_sizes());
  const at::Device device = param.device();
  for (const at::Tensor* t : {&grad, &exp_avg, &exp_avg_scale, &exp_avg_sq, &exp_avg_sq_scale, &step}) {
    TORCH_CHECK(t->defined() && t->device() == device, "adamw_lowbit: a state tensor or gradient of parameter ", i,
                " is undefined or not on the parameter's device ", device);
  }
  TORCH_CHECK(step.scalar_type() == at::kFloat, "adamw_lowbit: step of parameter ", i, " must be float32");
  if (symbolic) return core::StateLayout::kFloat32;  // not used by the Meta kernel
  TORCH_CHECK(step.numel() == 1, "adamw_lowbit: step of parameter ", i, " must have one element");
  const int64_t n = param.numel();
  const core::StateLayout layout = exp_avg.scalar_type() == at::kFloat
                                       ? core::StateLayout::kFloat32
                                       : quantized_layout(format, param.sizes(), n, block_size);
  const StateSpec s = state_spec(layout, param.sizes(), n, block_size);
  auto check_tensor = [&](const at::Tensor& t, const char* name, at::ScalarType dtype, int64_t numel) {
    TORCH_CHECK(t.scalar_type() == dtype && t.numel() == numel && t.is_contiguous(), "adamw_lowbit: ", name,
                " of parameter ", i, " (shape ", param.sizes(), ") must be a contiguous ", dtype, " tensor of ", numel,
                " elements for this state format and block_size ", block_size, ", got ", t.scalar_type(), " of ",
                t.numel(), " elements (was the state created with another format or block_size?)");
  };
  check_tensor(exp_avg, "exp_avg", s.code_dtype, s.exp_avg_numel);
  check_tensor(exp_avg_scale, "exp_avg_scale", at::kFloat, s.exp_avg_scale_numel);
  check_tensor(exp_avg_sq, "exp_avg_sq", s.code_dtype, s.exp_avg_sq_numel);
  check_tensor(exp_avg_sq_scale, "exp_avg_sq_scale", at::kFloat, s.exp_avg_sq_scale_numel);
  return layout;
}

// The parsed arguments of one lowbit::adamw_lowbit_step_ call. parse_adamw_lowbit_step_args runs
// every check of the op in one order, so the Meta, CPU and CUDA kernels reject the same inputs
// with the same message.
struct AdamWStepArgs {
  core::StateFormat format;
  std::vector<core::StateLayout> layouts;  // one per parameter (kFloat32 for symbolic shapes)
  core::AdamWHyper hyper;                  // the coefficients the kernels take
};

inline AdamWStepArgs parse_adamw_lowbit_step_args(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                                                  at::TensorList exp_avg_scale, at::TensorList exp_avg_sq,
                                                  at::TensorList exp_avg_sq_scale, at::TensorList steps, double lr,
                                                  double beta1, double beta2, double eps, double weight_decay,
                                                  c10::string_view state_format, int64_t block_size) {
  const core::StateFormat format = parse_state_format(state_format);
  check_block_size(block_size);
  check_adamw_hyperparameters(lr, beta1, beta2, eps, weight_decay);
  const size_t n = params.size();
  TORCH_CHECK(grads.size() == n && exp_avg.size() == n && exp_avg_scale.size() == n && exp_avg_sq.size() == n &&
                  exp_avg_sq_scale.size() == n && steps.size() == n,
              "adamw_lowbit: params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale and step must be ",
              "lists of the same length; got ", n, ", ", grads.size(), ", ", exp_avg.size(), ", ", exp_avg_scale.size(),
              ", ", exp_avg_sq.size(), ", ", exp_avg_sq_scale.size(), ", ", steps.size());
  AdamWStepArgs args{format, std::vector<core::StateLayout>(n),
                     core::make_adamw_hyper(lr, beta1, beta2, eps, weight_decay)};
  for (size_t i = 0; i < n; ++i) {
    TORCH_CHECK(params[i].device() == params[0].device(), "adamw_lowbit: all parameters of one call must be on one ",
                "device; parameter ", i, " is on ", params[i].device(), ", parameter 0 on ", params[0].device());
    args.layouts[i] = check_param_state(i, params[i], grads[i], exp_avg[i], exp_avg_scale[i], exp_avg_sq[i],
                                        exp_avg_sq_scale[i], steps[i], format, block_size);
  }
  return args;
}

}  // namespace lowbit::ops
