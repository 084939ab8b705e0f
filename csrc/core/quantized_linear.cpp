// C++ entry points of the quantized_linear ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/quantized_linear.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

using OptTensor = std::optional<at::Tensor>;

at::Tensor int8_weight_only_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                   const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::int8_weight_only_linear");
  return op.call(input, weight, scale, bias);
}

at::Tensor int8_dynamic_activation_int8_linear(const at::Tensor& input, const at::Tensor& weight,
                                               const at::Tensor& weight_scale, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::int8_dynamic_activation_int8_linear");
  return op.call(input, weight, weight_scale, bias);
}

at::Tensor int4_pack_tinygemm(const at::Tensor& codes, int64_t inner_k_tiles) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, int64_t)>("lowbit::int4_pack_tinygemm");
  return op.call(codes, inner_k_tiles);
}

at::Tensor int4_weight_only_linear(const at::Tensor& input, const at::Tensor& packed_weight,
                                   const at::Tensor& scale_and_zeros, int64_t group_size, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                           const OptTensor&)>("lowbit::int4_weight_only_linear");
  return op.call(input, packed_weight, scale_and_zeros, group_size, bias);
}

at::Tensor int8_dynamic_activation_int4_linear(const at::Tensor& input, const at::Tensor& packed_weight,
                                               const at::Tensor& scale, const at::Tensor& zero_point,
                                               int64_t group_size, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           int64_t, const OptTensor&)>("lowbit::int8_dynamic_activation_int4_linear");
  return op.call(input, packed_weight, scale, zero_point, group_size, bias);
}

at::Tensor uintx_weight_only_linear(const at::Tensor& input, const at::Tensor& packed_weight, const at::Tensor& scale,
                                    const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                    const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           int64_t, int64_t, const OptTensor&)>("lowbit::uintx_weight_only_linear");
  return op.call(input, packed_weight, scale, zero_point, bits, group_size, bias);
}

at::Tensor fpx_weight_only_linear(const at::Tensor& input, const at::Tensor& packed_weight, const at::Tensor& scale,
                                  int64_t ebits, int64_t mbits, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                           const OptTensor&)>("lowbit::fpx_weight_only_linear");
  return op.call(input, packed_weight, scale, ebits, mbits, bias);
}

at::Tensor float8_weight_only_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                     const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::float8_weight_only_linear");
  return op.call(input, weight, scale, bias);
}

at::Tensor float8_dynamic_activation_linear(const at::Tensor& input, const at::Tensor& weight,
                                            const at::Tensor& weight_scale, const std::string& granularity,
                                            const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::string_view,
                                           const OptTensor&)>("lowbit::float8_dynamic_activation_linear");
  return op.call(input, weight, weight_scale, granularity, bias);
}

}  // namespace lowbit::core
