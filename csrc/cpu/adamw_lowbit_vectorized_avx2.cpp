// The vectorized AdamW kernel (adamw_lowbit_vectorized.h) for AVX2 + FMA (8 lanes; built with -mavx2 -mfma -ffp-contract=off).
// Without those flags (a build for another architecture) this file defines no kernel.
#if defined(CPU_CAPABILITY_AVX2)
#include <lowbit/cpu/adamw_lowbit_vectorized.h>

lowbit::cpu::adamw::StepFn lowbit::cpu::adamw::step_vectorized_avx2() { return &step_vectorized; }
#else
#include <lowbit/cpu/adamw_lowbit.h>

lowbit::cpu::adamw::StepFn lowbit::cpu::adamw::step_vectorized_avx2() { return nullptr; }
#endif
