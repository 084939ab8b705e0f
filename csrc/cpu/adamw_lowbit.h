// The CPU kernels of lowbit::adamw_lowbit_step_ (internal): one parameter of a call as raw
// pointers, the scalar reference (the definition of the numerics, which the CUDA kernel
// reproduces) and the vectorized kernels, compiled once per instruction set and proven equal to
// the reference bit for bit (tests/cpp/test_optim_kernels.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

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

// Steps one parameter in place (parallel over its blocks inside).
using StepFn = void (*)(const ParamSlot& slot, int64_t block_size, bool stochastic_round);

// The scalar reference: per element exactly the functions of core/adamw_math.h and
// core/optimizer_state_formats.h, in plain loops.
void step_reference(const ParamSlot& slot, int64_t block_size, bool stochastic_round);

// The vectorized kernel of each instruction set, or nullptr where this build lacks it.
StepFn step_vectorized_default();
StepFn step_vectorized_avx2();
StepFn step_vectorized_avx512();

// Which kernel a call runs.
enum class Kernel {
  kAuto,        // the vectorized kernel of the best instruction set the CPU has (ATen's choice,
                // so ATEN_CPU_CAPABILITY=default|avx2|avx512 selects it as for ATen's own kernels)
  kReference,   // step_reference
  kDefault,     // the vectorized kernel built for baseline x86-64 / the build's default target
  kAvx2,
  kAvx512,
};

// The kernel kAuto runs on this machine, by name ("avx512", "avx2", "default").
std::string auto_kernel_name();

// lowbit::adamw_lowbit_step_ on CPU tensors with a chosen kernel (the op runs kAuto); errors if
// the kernel is not built or the CPU lacks its instruction set.
void adamw_lowbit_step(at::TensorList params, at::TensorList grads, at::TensorList exp_avg,
                       at::TensorList exp_avg_scale, at::TensorList exp_avg_sq, at::TensorList exp_avg_sq_scale,
                       at::TensorList steps, double lr, double beta1, double beta2, double eps, double weight_decay,
                       c10::string_view state_format, int64_t block_size, bool bf16_stochastic_round, Kernel kernel);

}  // namespace lowbit::cpu::adamw
