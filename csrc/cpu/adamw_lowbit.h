// The CPU kernels of lowbit::adamw_lowbit_step_ (internal): one parameter of a call as raw
// pointers, the scalar reference (the definition of the numerics, which the CUDA kernel
// reproduces) and the call that runs it or the vectorized kernel of the current kernel set
// (csrc/cpu/vec/adamw_lowbit.cpp, compiled once per instruction set), proven equal to the
// reference bit for bit (tests/cpp/test_optim_kernels.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include <lowbit/core/adamw_math.h>
#include <lowbit/core/optimizer_state_formats.h>

namespace lowbit::cpu::adamw {

// One parameter of the call, as raw pointers; its step count is already incremented.
struct ParamSlot {
  void* param;
  const void* grad;
  void* m;
  float* m_scale;
  void* v;
  float* v_scale;
  int64_t numel, rows, cols;  // rows / cols: the rank-1 matrix view (k4bitRank1 only)
  int64_t index, step;        // position in the call, step count (stochastic rounding bits)
  bool is_bf16;
  core::StateLayout layout;
  core::AdamWCoefs coefs;
};

// The scalar reference: per element exactly the functions of core/adamw_math.h and
// core/optimizer_state_formats.h, in plain loops. The vectorized kernel of each instruction
// set is Kernels::adamw_lowbit_step (csrc/cpu/vec/adamw_lowbit.cpp; csrc/cpu/vec_dispatch.cpp).
void step_reference(const ParamSlot& slot, int64_t block_size, bool stochastic_round);

// lowbit::adamw_lowbit_step_ on CPU tensors: the kernels of the current set
// (cpu::vec::kernel_set(): LOWBIT_CPU_KERNELS, else ATen's capability; tests switch it with
// cpu::vec::set_kernel_set), the scalar reference for KernelSet::Reference.
void adamw_lowbit_step(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                       at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                       at::TensorList steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                       c10::string_view state_format, int64_t block_size, bool bf16_stochastic_round);

}  // namespace lowbit::cpu::adamw
