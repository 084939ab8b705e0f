// lowbit::core quantized linears: y = x @ dequant(W)^T + b for each packed weight format of
// quantize_ (inference/). Inputs are (..., K) in float32 / bfloat16 / float16; outputs (..., N)
// in the input's dtype. Weights are (N, K) logically; how each format stores them is below.
// The reference kernels are built from lowbit's affine / fpx / float8 ops and aten GEMMs and run
// on every device; Meta kernels give shapes for torch.compile.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace lowbit::core {

// weight int8 (N, K), scale float32 (N,): per-channel symmetric int8; the per-channel scale is
// applied to the GEMM's output (dequantization folded into the GEMM epilogue).
at::Tensor int8_weight_only_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                   const std::optional<at::Tensor>& bias = std::nullopt);

// Dynamic per-token symmetric int8 activations (lowbit::choose_qparams_affine) times per-channel
// int8 weights, int32 accumulation, then rescale by act_scale (M, 1) * weight_scale (1, N).
at::Tensor int8_dynamic_activation_int8_linear(const at::Tensor& input, const at::Tensor& weight,
                                               const at::Tensor& weight_scale,
                                               const std::optional<at::Tensor>& bias = std::nullopt);

// Packs uint4 codes (N, K) (uint8 in 0..15) into tinygemm's tile layout for input's device:
// aten::_convert_weight_to_int4pack_for_cpu on CPUs, aten::_convert_weight_to_int4pack on CUDA.
at::Tensor int4_pack_tinygemm(const at::Tensor& codes, int64_t inner_k_tiles = 8);

// Tinygemm int4 weight-only GEMM (aten::_weight_int4pack_mm[_for_cpu]): packed from
// int4_pack_tinygemm, scale_and_zeros (K / group_size, N, 2) in the compute dtype, "float" zero
// point domain: w = (q - 8) * scale + zero. The input is cast to scale_and_zeros' dtype.
at::Tensor int4_weight_only_linear(const at::Tensor& input, const at::Tensor& packed_weight,
                                   const at::Tensor& scale_and_zeros, int64_t group_size,
                                   const std::optional<at::Tensor>& bias = std::nullopt);

// Dynamic per-token asymmetric int8 activations (fake-quantized) times group-wise symmetric
// int4 weights stored as uint4 codes (zero point 8) packed two per byte, packed (N, K / 2);
// scale float32, zero_point int32, both (N, K / group_size). float32 accumulation.
at::Tensor int8_dynamic_activation_int4_linear(const at::Tensor& input, const at::Tensor& packed_weight,
                                               const at::Tensor& scale, const at::Tensor& zero_point,
                                               int64_t group_size,
                                               const std::optional<at::Tensor>& bias = std::nullopt);

// Group-wise asymmetric uint{bits} weights (bits 1..8), bit-packed row by row: packed
// (N, K * bits / 8) uint8 (K * bits a multiple of 8), scale float32 / zero_point int32
// (N, K / group_size). Dequantize (lowbit::dequantize_affine) then GEMM.
at::Tensor uintx_weight_only_linear(const at::Tensor& input, const at::Tensor& packed_weight, const at::Tensor& scale,
                                    const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                    const std::optional<at::Tensor>& bias = std::nullopt);

// fpX_e{ebits}m{mbits} weights with one float32 scale per row (scale (N,)), codes bit-packed
// row by row: packed (N, K * (1 + ebits + mbits) / 8). Decode (lowbit::fpx_decode), scale, GEMM.
at::Tensor fpx_weight_only_linear(const at::Tensor& input, const at::Tensor& packed_weight, const at::Tensor& scale,
                                  int64_t ebits, int64_t mbits, const std::optional<at::Tensor>& bias = std::nullopt);

// float8 weights (N, K) with row-wise float32 scales (N, 1); activations stay in high precision.
at::Tensor float8_weight_only_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                     const std::optional<at::Tensor>& bias = std::nullopt);

// Dynamic float8 activations (lowbit::cast_to_float8 with `granularity` "tensor" or "row")
// times float8 weights (N, K) with weight_scale () or (N, 1), through lowbit::scaled_mm
// (emulated in float32 off CUDA; cuBLASLt on CUDA).
at::Tensor float8_dynamic_activation_linear(const at::Tensor& input, const at::Tensor& weight,
                                            const at::Tensor& weight_scale, const std::string& granularity,
                                            const std::optional<at::Tensor>& bias = std::nullopt);

}  // namespace lowbit::core
