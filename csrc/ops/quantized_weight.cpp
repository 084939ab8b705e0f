// The quantized-weight core as dispatcher ops, so the Python face builds, converts, saves and
// loads exactly the C++ description (csrc/quant). Each takes the format's canonical name once per
// call; the per-call path of a quantized layer is the format's own linear op, which takes none.
#include <torch/library.h>

#include <lowbit/quant/file.h>
#include <lowbit/quant/format.h>

namespace lowbit::ops {
namespace {

using quant::parse_quantize_config;

// The formats index their parts unchecked (p[0], p[1]): a wrong count is an error here, naming
// the format and the count it takes.
const quant::QuantizeConfig& check_part_count(const quant::QuantizeConfig& config, at::TensorList parts,
                                              const char* op) {
  const size_t want = config.format().part_names().size();
  TORCH_CHECK(parts.size() == want, op, ": format ", config.name(), " takes ", want, " parts, got ", parts.size());
  return config;
}

std::vector<at::Tensor> quantize_weight_op(const at::Tensor& weight, c10::string_view config) {
  return quant::quantize_weight(weight, parse_quantize_config(std::string(config))).parts;
}

// Composite (implicit): it traces into the format's own op. A convenience for one-off calls; it
// parses `config` on every call, so layers call the format's op directly.
at::Tensor quantized_linear_op(const at::Tensor& input, at::TensorList parts, c10::string_view config,
                               const std::optional<at::Tensor>& bias) {
  const quant::QuantizeConfig c = parse_quantize_config(std::string(config));
  return check_part_count(c, parts, "quantized_linear").format().linear(input, parts, bias);
}

at::Tensor dequantize_weight_op(at::TensorList parts, c10::string_view config, int64_t out_features,
                                int64_t in_features, at::ScalarType dtype) {
  return quant::dequantize_weight(quant::quantized_weight_from_parts(parse_quantize_config(std::string(config)),
                                                                     parts.vec(), out_features, in_features, dtype));
}

std::vector<at::Tensor> convert_quantized_weight_op(at::TensorList parts, c10::string_view config,
                                                    at::ScalarType dtype, at::Device device) {
  quant::QuantizedWeight w;
  w.config = check_part_count(parse_quantize_config(std::string(config)), parts, "convert_quantized_weight");
  w.parts = parts.vec();
  return quant::convert_quantized_weight(w, dtype, device).parts;
}

std::tuple<std::vector<at::Tensor>, std::string> read_quantized_file_op(c10::string_view path) {
  auto [tensors, manifest] = quant::to_manifest(quant::read_quantized_file(std::string(path)));
  return {std::move(tensors), std::move(manifest)};
}

void write_quantized_file_op(c10::string_view path, at::TensorList tensors, c10::string_view manifest) {
  const std::string where = "save_quantized: " + std::string(path);
  quant::write_quantized_file(std::string(path), quant::from_manifest(tensors.vec(), std::string(manifest), where));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("quantize_weight(Tensor weight, str config) -> Tensor[]");
  m.def("quantized_linear(Tensor input, Tensor[] parts, str config, Tensor? bias=None) -> Tensor");
  m.def("dequantize_weight(Tensor[] parts, str config, int out_features, int in_features, ScalarType dtype) -> Tensor");
  m.def("convert_quantized_weight(Tensor[] parts, str config, ScalarType dtype, Device device) -> Tensor[]");
  // File I/O of quantized checkpoints (csrc/quant/file.h): tensors plus a JSON manifest.
  m.def("read_quantized_file(str path) -> (Tensor[], str)", &read_quantized_file_op);
  m.def("write_quantized_file(str path, Tensor[] tensors, str manifest) -> ()", &write_quantized_file_op);
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("quantize_weight", &quantize_weight_op);
  m.impl("dequantize_weight", &dequantize_weight_op);
  m.impl("convert_quantized_weight", &convert_quantized_weight_op);
}

TORCH_LIBRARY_IMPL(lowbit, CompositeImplicitAutograd, m) { m.impl("quantized_linear", &quantized_linear_op); }

}  // namespace lowbit::ops
