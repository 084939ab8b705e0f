// C++ entry points of the affine ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/affine.h>

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
