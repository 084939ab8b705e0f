// The reference (emulated) scaled GEMM: device-generic ATen code, used as the CPU kernel and
// by the CUDA kernel when emulate=true.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace lowbit::cpu {

// float32 product of the fp8 values (exact products, float32 accumulation), then the scales
// and bias in float32 as the cuBLASLt epilogue applies them, then one rounding to out_dtype.
at::Tensor scaled_mm_reference(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                               const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                               at::ScalarType out_dtype);

}  // namespace lowbit::cpu
