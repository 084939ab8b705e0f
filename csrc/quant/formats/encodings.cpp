#include <lowbit/quant/formats/encodings.h>

#include <lowbit/core/affine.h>
#include <lowbit/core/bit_packing.h>
#include <lowbit/core/float8_cast.h>

namespace lowbit::quant {

std::vector<at::Tensor> quantize_int8_per_channel(const at::Tensor& w) {
  const int64_t k = w.size(1);
  auto [scale, zp] = core::choose_qparams_affine(w, {1, k}, "int8", "symmetric");
  return {core::quantize_affine(w, {1, k}, scale, zp, "int8"), scale.reshape({w.size(0)})};
}

at::Tensor dequantize_int8_per_channel(const at::Tensor& qdata, const at::Tensor& scale, at::ScalarType dtype) {
  return qdata.to(at::kFloat).mul_(scale.reshape({-1, 1})).to(dtype);
}

std::vector<at::Tensor> quantize_groupwise_packed(const at::Tensor& w, int64_t bits, int64_t group_size,
                                                  const std::string& mapping) {
  const std::string qdtype = "uint" + std::to_string(bits);
  auto [scale, zp] = core::choose_qparams_affine(w, {1, group_size}, qdtype, mapping, "int");
  const at::Tensor codes = core::quantize_affine(w, {1, group_size}, scale, zp, qdtype);
  return {core::pack_uintx_rows(codes, bits), scale, zp};
}

at::Tensor dequantize_groupwise_packed(at::TensorList parts, int64_t bits, int64_t group_size, at::ScalarType dtype) {
  return core::dequantize_affine(core::unpack_uintx_rows(parts[0], bits), {1, group_size}, parts[1], parts[2],
                                 "uint" + std::to_string(bits), "int", dtype);
}

std::vector<at::Tensor> quantize_float8(const at::Tensor& w, at::ScalarType float8_dtype, const std::string& granularity) {
  auto [data, scale] = core::cast_to_float8(w, float8_dtype, granularity);
  return {data, scale};
}

at::Tensor dequantize_float8(const at::Tensor& qdata, const at::Tensor& scale, at::ScalarType dtype) {
  return qdata.to(at::kFloat).mul_(scale).to(dtype);
}

std::optional<int64_t> parse_suffix_int(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  int64_t v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || v > (int64_t{1} << 40)) return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

std::optional<std::string> GroupwisePackedFormat::shape_reason(int64_t n, int64_t k) const {
  if (k % group_size_ == 0 && k % 8 == 0) return std::nullopt;
  return "(out_features, in_features) = (" + std::to_string(n) + ", " + std::to_string(k) +
         "): in_features must be a multiple of group_size " + std::to_string(group_size_) + " and of 8";
}

}  // namespace lowbit::quant
