// Weight encodings shared by several formats (each format file says which it uses), built from
// lowbit's affine, bit-packing and float8 ops.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

namespace lowbit::quant {

// int8 per-channel symmetric: {qdata int8 (N, K), scale float32 (N,)}; w = qdata * scale[n].
std::vector<at::Tensor> quantize_int8_per_channel(const at::Tensor& w);
at::Tensor dequantize_int8_per_channel(const at::Tensor& qdata, const at::Tensor& scale, at::ScalarType dtype);

// Group-wise uint{bits} codes bit-packed row by row: {packed (N, K * bits / 8), scale float32,
// zero_point int32 (N, K / group)}. mapping "symmetric" (zero point 2^(bits-1)) or "asymmetric".
std::vector<at::Tensor> quantize_groupwise_packed(const at::Tensor& w, int64_t bits, int64_t group_size,
                                                  const std::string& mapping);
at::Tensor dequantize_groupwise_packed(at::TensorList parts, int64_t bits, int64_t group_size, at::ScalarType dtype);

// float8 with a float32 scale of shape (N, 1) ("row") or () ("tensor"): {qdata, scale}.
std::vector<at::Tensor> quantize_float8(const at::Tensor& w, at::ScalarType float8_dtype, const std::string& granularity);
at::Tensor dequantize_float8(const at::Tensor& qdata, const at::Tensor& scale, at::ScalarType dtype);

// "<prefix><int>" -> the int (e.g. "int4wo-" + "64"), nullopt if `name` has another form.
std::optional<int64_t> parse_suffix_int(const std::string& name, const std::string& prefix);

}  // namespace lowbit::quant
