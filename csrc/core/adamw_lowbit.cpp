// C++ entry points of the adamw_lowbit ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/adamw_lowbit.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

AdamWLowBitState adamw_lowbit_init_state(const at::Tensor& param, const std::string& state_format,
                                         int64_t block_size, int64_t min_quantized_size) {
  static auto op = ops::find_op<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
      const at::Tensor&, c10::string_view, int64_t, int64_t)>("lowbit::adamw_lowbit_init_state");
  auto [step, m, ms, v, vs] = op.call(param, state_format, block_size, min_quantized_size);
  return {step, m, ms, v, vs};
}

void adamw_lowbit_step_(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                        at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                        at::TensorList steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                        const std::string& state_format, int64_t block_size, bool bf16_stochastic_round) {
  static auto op =
      ops::find_op<void(at::TensorList, at::TensorList, at::TensorList, at::TensorList, at::TensorList, at::TensorList,
                        at::TensorList, double, double, double, double, double, c10::string_view, int64_t, bool)>(
          "lowbit::adamw_lowbit_step_");
  op.call(params, grads, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale, steps, lr, beta1, beta2, eps,
          weight_decay, state_format, block_size, bf16_stochastic_round);
}

}  // namespace lowbit::core
