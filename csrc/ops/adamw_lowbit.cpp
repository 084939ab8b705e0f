// Schemas and Meta kernel of the low-bit AdamW ops:
//   lowbit::adamw_lowbit_init_state  a fresh state for one parameter (device-agnostic: one
//                                    CompositeExplicitAutograd kernel serves CPU, CUDA, Meta)
//   lowbit::adamw_lowbit_step_       the fused in-place step over one parameter group
//                                    (CPU reference in csrc/cpu, CUDA in csrc/cuda)
// lr, betas, eps and weight_decay are plain floats, so LR schedulers just work; the bias
// corrections come from the per-parameter step tensors inside the kernels.
#include <lowbit/core/adamw_lowbit.h>

#include <ATen/ops/zeros.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include <lowbit/ops/adamw_lowbit_checks.h>

namespace lowbit::ops {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> adamw_lowbit_init_state_impl(
    const at::Tensor& param, c10::string_view state_format, int64_t block_size, int64_t min_quantized_size) {
  const core::StateFormat format = parse_state_format(state_format);
  check_block_size(block_size);
  check_param_dtype(param, 0);
  TORCH_CHECK(min_quantized_size >= 0, "adamw_lowbit: min_quantized_size must be >= 0, got ", min_quantized_size);
  // The layout depends on the shape, so a symbolic shape is specialized (guarded) here.
  std::vector<int64_t> sizes;
  for (const c10::SymInt& d : param.sym_sizes()) sizes.push_back(d.guard_int(__FILE__, __LINE__));
  const int64_t n = c10::multiply_integers(sizes);
  const core::StateLayout layout =
      n < min_quantized_size ? core::StateLayout::kFloat32 : quantized_layout(format, sizes, n, block_size);
  const StateSpec s = state_spec(layout, sizes, n, block_size);
  const auto f32 = param.options().dtype(at::kFloat);
  const auto codes = param.options().dtype(s.code_dtype);
  at::Tensor step = at::zeros({}, f32);
  if (layout == core::StateLayout::kFloat32) {
    return {step, at::zeros(sizes, f32), at::zeros({0}, f32), at::zeros(sizes, f32),
            at::zeros({0}, f32)};
  }
  // All scales 0: every code decodes to 0, whatever the code.
  return {step, at::zeros({s.exp_avg_numel}, codes), at::zeros({s.exp_avg_scale_numel}, f32),
          at::zeros({s.exp_avg_sq_numel}, codes), at::zeros({s.exp_avg_sq_scale_numel}, f32)};
}

void adamw_lowbit_step_meta(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                            at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                            at::TensorList steps, double lr, double beta1, double beta2, double eps,
                            double weight_decay, c10::string_view state_format, int64_t block_size,
                            bool bf16_stochastic_round) {
  parse_adamw_lowbit_step_args(params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale, steps, lr, beta1,
                               beta2, eps, weight_decay, state_format, block_size);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("adamw_lowbit_init_state(Tensor param, str state_format, int block_size, int min_quantized_size=4096)"
        " -> (Tensor step, Tensor exp_avg, Tensor exp_avg_scale, Tensor exp_avg_sq, Tensor exp_avg_sq_scale)");
  m.def("adamw_lowbit_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avg, Tensor(c!)[] exp_avg_scale,"
        " Tensor(d!)[] exp_avg_sq, Tensor(e!)[] exp_avg_sq_scale, Tensor(f!)[] step, float lr, float beta1,"
        " float beta2, float eps, float weight_decay, str state_format, int block_size,"
        " bool bf16_stochastic_round=False) -> ()");
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("adamw_lowbit_init_state", &adamw_lowbit_init_state_impl);
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl("adamw_lowbit_step_", &adamw_lowbit_step_meta); }

}  // namespace lowbit::ops
