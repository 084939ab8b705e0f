// lowbit::core::adamw_lowbit_step_ and adamw_lowbit_init_state — the fused AdamW step over
// 8-bit, 4-bit and fp8 optimizer states that both optimizer faces (lowbit::optim and
// lowbit.optim) call. The formats are defined in <lowbit/core/optimizer_state_formats.h>.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace lowbit::core {

// One parameter's optimizer state. step: float32 scalar (the number of steps taken);
// exp_avg / exp_avg_sq: codes (uint8 or float8_e4m3fn, flat) or fp32 (parameter-shaped);
// exp_avg_scale / exp_avg_sq_scale: fp32 scales (empty for an fp32 state).
struct AdamWLowBitState {
  at::Tensor step, exp_avg, exp_avg_scale, exp_avg_sq, exp_avg_sq_scale;
};

// A fresh (all-zero) state for `param` on its device: fp32 when param.numel() <
// min_quantized_size, else `state_format` ("8bit", "4bit", "fp8") over blocks of block_size.
AdamWLowBitState adamw_lowbit_init_state(const at::Tensor& param, const std::string& state_format,
                                         int64_t block_size, int64_t min_quantized_size = 4096);

// One AdamW step for a list of parameters (one parameter group), in place: increments each
// step, then per element dequantizes m and v, applies the AdamW update to the parameter and
// requantizes m and v. All lists have one entry per parameter; the states come from
// adamw_lowbit_init_state with the same state_format and block_size. bf16 parameters are
// rounded to nearest even, or stochastically when bf16_stochastic_round. No host sync on CUDA.
void adamw_lowbit_step_(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                        at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                        at::TensorList steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                        const std::string& state_format, int64_t block_size, bool bf16_stochastic_round = false);

}  // namespace lowbit::core
