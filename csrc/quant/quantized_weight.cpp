#include <lowbit/quant/quantized_weight.h>

#include <ATen/ops/empty.h>

#include <lowbit/quant/format.h>

namespace lowbit::quant {
namespace {

// The formats read their parts by position, so a hand-assembled weight with too few parts must be
// an error before any of them runs, not an out-of-bounds read.
void check_part_count(const QuantizeConfig& config, size_t count, const char* what) {
  const auto names = config.format().part_names();
  if (count == names.size()) return;
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  TORCH_CHECK(false, what, ": quantized weight ", config.name(), ": expected ", names.size(), " parts (", all, "), got ",
              count);
}

const QuantizedWeight& checked(const QuantizedWeight& w, const char* what) {
  check_part_count(w.config, w.parts.size(), what);
  return w;
}

}  // namespace

std::string QuantizedWeight::qdtype() const { return config.format().qdtype(); }
std::vector<int64_t> QuantizedWeight::block_size() const { return config.format().block_size(out_features, in_features); }
std::string QuantizedWeight::layout() const { return config.format().layout(); }
std::string QuantizedWeight::zero_point_domain() const { return config.format().zero_point_domain(); }
std::vector<std::string> QuantizedWeight::part_names() const { return config.format().part_names(); }
at::Tensor QuantizedWeight::scale() const { return config.format().scale(checked(*this, "scale").parts); }
std::optional<at::Tensor> QuantizedWeight::zero_point() const {
  return config.format().zero_point(checked(*this, "zero_point").parts);
}

const at::Tensor& QuantizedWeight::part(const std::string& name) const {
  const auto names = part_names();
  std::string all;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return parts.at(i);
    all += (all.empty() ? "" : ", ") + names[i];
  }
  TORCH_CHECK(false, "quantized weight ", config.name(), " has no part '", name, "'; its parts: ", all);
}

int64_t QuantizedWeight::nbytes() const {
  int64_t n = 0;
  for (const auto& p : parts) n += p.numel() * static_cast<int64_t>(p.element_size());
  return n;
}

QuantizedWeight quantize_weight(const at::Tensor& weight, const QuantizeConfig& config) {
  const QuantFormat& format = config.format();
  TORCH_CHECK(weight.dim() == 2, "quantize_weight: weight must be 2-D (out_features, in_features), got shape ",
              weight.sizes());
  const int64_t n = weight.size(0), k = weight.size(1);
  if (auto reason = unsupported_reason(config, n, k, weight.scalar_type())) {
    TORCH_CHECK(false, "quantize_weight: ", config.to_string(), " cannot quantize this weight: ", *reason);
  }
  QuantizedWeight q;
  q.config = config;
  q.out_features = n;
  q.in_features = k;
  q.dtype = weight.scalar_type();
  q.parts = format.quantize(weight.detach(), weight.detach().to(at::kFloat).contiguous());
  return q;
}

QuantizedWeight quantized_weight_from_parts(const QuantizeConfig& config, std::vector<at::Tensor> parts,
                                            int64_t out_features, int64_t in_features, at::ScalarType dtype) {
  const QuantFormat& format = config.format();
  check_part_count(config, parts.size(), "quantized_weight_from_parts");
  weight_dtype_name(dtype);  // an error for dtypes no format takes
  QuantizedWeight q;
  q.config = config;
  q.parts = std::move(parts);
  q.out_features = out_features;
  q.in_features = in_features;
  q.dtype = dtype;
  // The format's op checks the parts on an empty batch: its checks name what is wrong.
  const at::Tensor probe = at::empty({0, in_features}, q.parts[0].options().dtype(dtype));
  const at::Tensor y = format.linear(probe, q.parts, std::nullopt);
  TORCH_CHECK(y.size(-1) == out_features, "quantized weight ", config.name(), ": parts describe ", y.size(-1),
              " output features, expected ", out_features);
  return q;
}

at::Tensor quantized_linear(const at::Tensor& input, const QuantizedWeight& w, const std::optional<at::Tensor>& bias) {
  return w.config.format().linear(input, checked(w, "quantized_linear").parts, bias);
}

at::Tensor dequantize_weight(const QuantizedWeight& w) {
  return w.config.format().dequantize(checked(w, "dequantize_weight").parts, w.out_features, w.in_features, w.dtype);
}

QuantizedWeight convert_quantized_weight(const QuantizedWeight& w, at::ScalarType dtype, c10::Device device) {
  weight_dtype_name(dtype);  // an error naming the allowed dtypes
  QuantizedWeight out = w;
  out.parts = w.config.format().convert_parts(checked(w, "convert_quantized_weight").parts, dtype, device);
  out.dtype = dtype;
  return out;
}

}  // namespace lowbit::quant
