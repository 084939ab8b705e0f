// lowbit::core affine quantization primitives (see core/affine_quant.h for the math).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <tuple>

namespace lowbit::core {

// Scale and zero point of every block of `input` (blocks of shape block_size). Both have shape
// input.shape / block_size. scale is float32 (or scale_dtype); zero_point is int32 for the "int"
// domain and float32 for "float". eps defaults to float32's machine epsilon. Min / max are taken
// over the finite values; a block holding a NaN gets a NaN scale (core/affine_quant.h).
std::tuple<at::Tensor, at::Tensor> choose_qparams_affine(const at::Tensor& input, at::IntArrayRef block_size,
                                                         const std::string& qdtype,
                                                         const std::string& mapping = "symmetric",
                                                         const std::string& zero_point_domain = "int",
                                                         std::optional<double> eps = std::nullopt,
                                                         std::optional<at::ScalarType> scale_dtype = std::nullopt);

// Quantizes input to qdtype codes (int8 tensor for intN, uint8 for uintN), same shape as input.
at::Tensor quantize_affine(const at::Tensor& input, at::IntArrayRef block_size, const at::Tensor& scale,
                           const at::Tensor& zero_point, const std::string& qdtype,
                           const std::string& zero_point_domain = "int");

// Maps qdtype codes back to real values of output_dtype.
at::Tensor dequantize_affine(const at::Tensor& data, at::IntArrayRef block_size, const at::Tensor& scale,
                             const at::Tensor& zero_point, const std::string& qdtype,
                             const std::string& zero_point_domain = "int",
                             at::ScalarType output_dtype = at::kFloat);

}  // namespace lowbit::core
