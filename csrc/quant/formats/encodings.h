// Weight encodings shared by several formats (each format file says which it uses), built from
// lowbit's affine, bit-packing and float8 ops, and the QuantFormat bases of the encodings that
// two formats share whole (the formats then differ only in their linear op).
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/quant/format.h>

#include <optional>
#include <string>
#include <utility>
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

// The int8 per-channel weight as a format's description (int8wo, int8dq).
class Int8PerChannelFormat : public QuantFormat {
 public:
  std::vector<std::string> part_names() const override { return {"qdata", "scale"}; }
  std::string qdtype() const override { return "int8"; }
  std::vector<int64_t> block_size(int64_t, int64_t k) const override { return {1, k}; }
  std::string layout() const override { return "plain"; }
  std::string zero_point_domain() const override { return "none"; }
  std::vector<at::Tensor> quantize(const at::Tensor&, const at::Tensor& w) const override {
    return quantize_int8_per_channel(w);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    return dequantize_int8_per_channel(p[0], p[1], dtype);
  }
};

// The group-wise bit-packed weight as a format's description (int4dq: 4 bits symmetric; uintXwo:
// 1..7 bits asymmetric), with its shape rule: whole groups and byte-aligned packed rows.
class GroupwisePackedFormat : public QuantFormat {
 public:
  GroupwisePackedFormat(int64_t bits, int64_t group_size, std::string mapping)
      : bits_(bits), group_size_(group_size), mapping_(std::move(mapping)) {}
  std::vector<std::string> part_names() const override { return {"qdata", "scale", "zero_point"}; }
  std::vector<int64_t> block_size(int64_t, int64_t) const override { return {1, group_size_}; }
  std::string layout() const override { return "bitpacked"; }
  std::string zero_point_domain() const override { return "int"; }
  std::optional<std::string> shape_reason(int64_t n, int64_t k) const override;
  std::vector<at::Tensor> quantize(const at::Tensor&, const at::Tensor& w) const override {
    return quantize_groupwise_packed(w, bits_, group_size_, mapping_);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    return dequantize_groupwise_packed(p, bits_, group_size_, dtype);
  }

 protected:
  int64_t bits_, group_size_;
  std::string mapping_;
};

// "<prefix><int>" -> the int (e.g. "int4wo-" + "64"), nullopt if `name` has another form.
std::optional<int64_t> parse_suffix_int(const std::string& name, const std::string& prefix);

}  // namespace lowbit::quant
