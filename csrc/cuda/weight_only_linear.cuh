// Shared by the weight-only quantized linear CUDA files (weight_only_*.cu): the formats, the
// problem every path takes, and the launchers of the three paths. Path choice:
// quantized_linear_paths.h; the design and numerics: weight_only_linear.cu.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <type_traits>

#include "quantized_linear_paths.h"

namespace lowbit::cuda::weight_only {

enum class Fmt { Int8, Uintx, Fpx };

// The formats' parameters, by value into the kernels.
struct FormatArgs {
  const float* scale = nullptr;         // uintx: (N, K / group_size); fpx: (N,); int8: unused here
  const int32_t* zero_point = nullptr;  // uintx: (N, K / group_size)
  int64_t groups_per_row = 0;           // uintx
  int64_t group_size = 1;               // uintx
  int ebits = 0, mbits = 0;             // fpx
};

// One weight-only linear call, after the op's checks: what every path needs.
struct Problem {
  at::Tensor x;       // (M, K), contiguous, 16-byte aligned
  at::Tensor packed;  // (N, K * bits / 8) uint8 or (N, K) int8, as given
  int64_t m, n, k;
  int bits;
  FormatArgs fa;
  at::Tensor col_scale;  // int8's per-channel scale (float32, contiguous), else undefined
  at::Tensor bias;       // bias.to(input dtype), contiguous, or undefined
};

// Calls f(std::integral_constant<int, B>) for the format's packed width (int8: 8; fpx: >= 2).
template <Fmt F, typename Fn>
void visit_bits(int bits, Fn&& f) {
  if constexpr (F == Fmt::Int8) {
    f(std::integral_constant<int, 8>());
  } else {
    switch (bits) {
      case 1:
        if constexpr (F == Fmt::Uintx) {
          f(std::integral_constant<int, 1>());
        } else {
          TORCH_CHECK(false, "fpx weight-only linear: 1-bit formats do not exist");  // ebits >= 1 and a sign bit
        }
        break;
      case 2: f(std::integral_constant<int, 2>()); break;
      case 3: f(std::integral_constant<int, 3>()); break;
      case 4: f(std::integral_constant<int, 4>()); break;
      case 5: f(std::integral_constant<int, 5>()); break;
      case 6: f(std::integral_constant<int, 6>()); break;
      case 7: f(std::integral_constant<int, 7>()); break;
      case 8: f(std::integral_constant<int, 8>()); break;
      default: TORCH_CHECK(false, "weight-only linear: unexpected bits ", bits);
    }
  }
}

// The three paths (y: (M, N) in x's dtype, written in full).
template <Fmt F>
void launch_gemv_for(const Problem& p, at::Tensor& y);              // weight_only_gemv.cuh, one .cu per format
void launch_wmma_gemm(const Problem& p, Fmt f, at::Tensor& y);      // weight_only_gemm.cu
at::Tensor dequantize_weight(const Problem& p, Fmt f, at::ScalarType dtype);  // weight_only_dequantize.cu

}  // namespace lowbit::cuda::weight_only
