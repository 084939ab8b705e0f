// Schemas and shape (Meta) kernels of the affine quantization ops.
#include <lowbit/core/affine.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/affine_checks.h>

namespace lowbit::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> choose_qparams_affine_meta(const at::Tensor& input, at::IntArrayRef block_size,
                                                              c10::string_view qdtype, c10::string_view mapping,
                                                              c10::string_view zero_point_domain,
                                                              std::optional<double> eps,
                                                              std::optional<at::ScalarType> scale_dtype) {
  const AffineArgs args = parse_choose_qparams_args(input, qdtype, mapping, zero_point_domain, eps, scale_dtype);
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
  parse_dequantize_args(data, block_size, scale, zero_point, qdtype, zero_point_domain, output_dtype);
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
