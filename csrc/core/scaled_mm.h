// lowbit::core::scaled_mm — fp8 x fp8 GEMM with dequantization scales.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

#include <lowbit/core/kernel_path.h>  // scaled_mm_last_path()

namespace lowbit::core {

// out = (a @ b) * scale_a * scale_b (+ bias), accumulated in float32, returned as out_dtype
// (bfloat16 by default; float16 or float32).
//   a: (M, K) and b: (K, N), float8_e4m3fn or float8_e5m2 (not both e5m2);
//   scale_a: one value (tensorwise) or (M, 1) (row-wise); scale_b: one value or (1, N); float32;
//   bias: (N,) or none. Any layout and any M, N, K: the op meets cuBLASLt's rules itself
//   (row-major a, column-major b, padded dims), callers need not.
// use_fast_accum: cuBLASLt's faster, less precise fp8 accumulation (for forward GEMMs).
// emulate: dequantize and multiply in float32 with ATen ops on any device (the reference, and
// the only path on CPUs). emulate=false on a device without fp8 GEMMs is an error.
// bias: float32, bfloat16 or float16 on a's device. On CUDA it is added in cuBLASLt's epilogue in
// the output dtype for 16-bit outputs (a float32 bias is rounded to it once), after the GEMM in
// float32 for float32 outputs. M, N or K = 0 return early (zeros plus bias when K = 0).
// scaled_mm_last_path() (kernel_path.h) says which path the last call took.
at::Tensor scaled_mm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a, const at::Tensor& scale_b,
                     const std::optional<at::Tensor>& bias = std::nullopt,
                     std::optional<at::ScalarType> out_dtype = std::nullopt, bool use_fast_accum = false,
                     bool emulate = false);

}  // namespace lowbit::core
