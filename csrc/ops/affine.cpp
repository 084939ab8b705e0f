// Schemas, shape (Meta) kernels and C++ entry points of the affine quantization ops.
#include <lowbit/ops/affine.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/affine_checks.h>
#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

std::tuple<at::Tensor, at::Tensor> choose_qparams_affine(const at::Tensor& input, at::IntArrayRef block_size,
                                                         const std::string& qdtype, const std::string& mapping,
                                                         const std::string& zero_point_domain,
                                                         std::optional<double> eps,
                                                         std::optional<at::ScalarType> scale_dtype) {
  static auto op = ops::find_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, at::IntArrayRef, c10::string_view, c10::string_view, c10::string_view,
      std::optional<double>, std::optional<at::ScalarType>)>("lowbit::choose_qparams_affine");
  return op.call(input, block_size, qdtype, mapping, zero_point_domain, eps, scale_dtype);
}

at::Tensor quantize_affine(const at::Tensor& input, at::IntArrayRef block_size, const at::Tensor& scale,
                           const at::Tensor& zero_point, const std::string& qdtype,
                           const std::string& zero_point_domain) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, at::IntArrayRef, const at::Tensor&, const at::Tensor&,
                                           c10::string_view, c10::string_view)>("lowbit::quantize_affine");
  return op.call(input, block_size, scale, zero_point, qdtype, zero_point_domain);
}

at::Tensor dequantize_affine(const at::Tensor& data, at::IntArrayRef block_size, const at::Tensor& scale,
                             const at::Tensor& zero_point, const std::string& qdtype,
                             const std::string& zero_point_domain, at::ScalarType output_dtype) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, at::IntArrayRef, const at::Tensor&, const at::Tensor&,
                                           c10::string_view, c10::string_view, at::ScalarType)>(
      "lowbit::dequantize_affine");
  return op.call(data, block_size, scale, zero_point, qdtype, zero_point_domain, output_dtype);
}

}  // namespace lowbit::core

namespace lowbit::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> choose_qparams_affine_meta(const at::Tensor& input, at::IntArrayRef block_size,
                                                              c10::string_view qdtype, c10::string_view mapping,
                                                              c10::string_view zero_point_domain,
                                                              std::optional<double> eps,
                                                              std::optional<at::ScalarType> scale_dtype) {
  const AffineArgs args = parse_choose_qparams_args(input, qdtype, mapping, zero_point_domain);
  const auto shape = affine_qparams_shape(input.sym_sizes(), block_size);
  return {at::empty_symint(shape, input.options().dtype(scale_dtype.value_or(at::kFloat))),
          at::empty_symint(shape, input.options().dtype(zero_point_dtype(args.domain)))};
}

at::Tensor quantize_affine_meta(const at::Tensor& input, at::IntArrayRef block_size, const at::Tensor& scale,
                                const at::Tensor& zero_point, c10::string_view qdtype,
                                c10::string_view zero_point_domain) {
  const AffineArgs args = parse_quantize_args(input, block_size, scale, zero_point, qdtype, zero_point_domain);
  return at::empty_symint(input.sym_sizes(), input.options().dtype(affine_storage_dtype(args.range)));
}

at::Tensor dequantize_affine_meta(const at::Tensor& data, at::IntArrayRef block_size, const at::Tensor& scale,
                                  const at::Tensor& zero_point, c10::string_view qdtype,
                                  c10::string_view zero_point_domain, at::ScalarType output_dtype) {
  parse_dequantize_args(data, block_size, scale, zero_point, qdtype, zero_point_domain);
  return at::empty_symint(data.sym_sizes(), data.options().dtype(output_dtype));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("choose_qparams_affine(Tensor input, int[] block_size, str qdtype, str mapping=\"symmetric\", "
        "str zero_point_domain=\"int\", float? eps=None, ScalarType? scale_dtype=None) "
        "-> (Tensor scale, Tensor zero_point)");
  m.def("quantize_affine(Tensor input, int[] block_size, Tensor scale, Tensor zero_point, str qdtype, "
        "str zero_point_domain=\"int\") -> Tensor");
  m.def("dequantize_affine(Tensor data, int[] block_size, Tensor scale, Tensor zero_point, str qdtype, "
        "str zero_point_domain=\"int\", ScalarType output_dtype=float) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("choose_qparams_affine", &choose_qparams_affine_meta);
  m.impl("quantize_affine", &quantize_affine_meta);
  m.impl("dequantize_affine", &dequantize_affine_meta);
}

}  // namespace lowbit::ops
