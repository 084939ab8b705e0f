// The vectorized AdamW kernel (adamw_lowbit_vectorized.h) for the build's baseline instruction
// set: at::vec's generic vectors (which the compiler vectorizes for SSE2 on x86-64), the byte
// steps one lane at a time. It runs where the CPU has neither AVX2 nor AVX-512.
#include <lowbit/cpu/adamw_lowbit_vectorized.h>

lowbit::cpu::adamw::StepFn lowbit::cpu::adamw::step_vectorized_default() { return &step_vectorized; }
