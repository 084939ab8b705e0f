// What a device offers lowbit's kernels, asked once in C++ so both faces decide alike.
#pragma once

#include <c10/core/Device.h>

namespace lowbit::core {

// True when `device` can run fp8 GEMMs on tensor cores: a CUDA GPU of compute capability 8.9 or
// newer, with lowbit built with its CUDA kernels. False for CPUs and for CPU-only builds.
bool has_fp8_gemm(const c10::Device& device);

}  // namespace lowbit::core
