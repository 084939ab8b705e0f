// The vectorized AdamW kernel (adamw_lowbit_vectorized.h) for AVX-512 F/BW/VL/DQ (16 lanes; built with -mavx512* -ffp-contract=off).
// Without those flags (a build for another architecture) this file defines no kernel.
#if defined(CPU_CAPABILITY_AVX512)
#include <lowbit/cpu/adamw_lowbit_vectorized.h>

lowbit::cpu::adamw::StepFn lowbit::cpu::adamw::step_vectorized_avx512() { return &step_vectorized; }
#else
#include <lowbit/cpu/adamw_lowbit.h>

lowbit::cpu::adamw::StepFn lowbit::cpu::adamw::step_vectorized_avx512() { return nullptr; }
#endif
