// lowbit::float8_linear — the float8 training linear: y = x @ W^T + b with all three GEMMs
// (output, grad_input, grad_weight) as scaled fp8 GEMMs, one autograd formula for both faces.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace lowbit::core {

// How tensors are scaled to float8 and which GEMMs run in fp8 (see README's table):
//   Tensorwise:       input, weight -> e4m3, grad_output -> e5m2, one dynamic scale per tensor;
//                     output, grad_input and grad_weight GEMMs in fp8.
//   Rowwise:          everything e4m3, one scale per row along each GEMM's reduction dim;
//                     all three GEMMs in fp8.
//   RowwiseWithGwHp:  Rowwise, with the grad_weight GEMM in high precision.
enum class Float8Recipe { Tensorwise, Rowwise, RowwiseWithGwHp };

// "tensorwise" | "rowwise" | "rowwise_with_gw_hp" -> recipe; anything else is an error listing them.
Float8Recipe parse_float8_recipe(const std::string& name);
std::string float8_recipe_name(Float8Recipe recipe);

// The float8 linear as a differentiable op (autograd in C++, so C++ loops get gradients).
// input (..., K), weight (N, K), bias (N,) -> (..., N) in input's dtype; gradients in the
// dtypes of input, weight and bias. emulate: fp8 rounding with float32 GEMMs (CPU, or GPUs
// without fp8). round_scales_to_power_of_2: power-of-2 scales. recompute_weight_in_bwd: cast
// the weight again in backward instead of saving its fp8 copy (tensorwise; rowwise always does).
at::Tensor float8_linear(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         const std::string& recipe = "tensorwise", bool emulate = false,
                         bool round_scales_to_power_of_2 = false, bool recompute_weight_in_bwd = false);

// The tensorwise float8 linear for a weight that is already cast: weight_fp8 (N, K) e4m3 with its
// one-element float32 weight_scale (FSDP's float8 all-gather gathers exactly these). The forward and
// grad_input GEMMs use weight_fp8 as it is (no second cast); input and grad_output are cast as in
// float8_linear(recipe="tensorwise"), so with weight_fp8, weight_scale = cast_to_float8(W, e4m3,
// "tensor") both ops compute the same bits. `weight` (N, K) only carries the autograd edge and the
// gradient's dtype: its values are never read, so a zero-stride placeholder will do.
at::Tensor float8_linear_precast(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& weight_fp8,
                                 const at::Tensor& weight_scale, const std::optional<at::Tensor>& bias,
                                 bool emulate = false, bool round_scales_to_power_of_2 = false);

}  // namespace lowbit::core
