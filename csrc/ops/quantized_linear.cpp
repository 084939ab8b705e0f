// Schemas and shape (Meta) kernels of the quantized linear ops.
#include <lowbit/core/quantized_linear.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/quantized_linear_checks.h>

namespace lowbit::ops {
namespace {

using OptTensor = std::optional<at::Tensor>;

at::Tensor qlinear_meta_output(const at::Tensor& input, const QLinearDims& d, const OptTensor& bias, const char* op) {
  check_qlinear_input(input, d.k, op);
  check_qlinear_bias(bias, d.n, op);
  return at::empty_symint(qlinear_output_shape(input, d.n), input.options());
}

at::Tensor int8_weight_only_linear_meta(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                        const OptTensor& bias) {
  const char* op = "int8_weight_only_linear";
  return qlinear_meta_output(input, check_int8_weight(weight, scale, op), bias, op);
}

at::Tensor int8_dynamic_activation_int8_linear_meta(const at::Tensor& input, const at::Tensor& weight,
                                                    const at::Tensor& weight_scale, const OptTensor& bias) {
  const char* op = "int8_dynamic_activation_int8_linear";
  return qlinear_meta_output(input, check_int8_weight(weight, weight_scale, op), bias, op);
}

at::Tensor int4_weight_only_linear_meta(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& sz,
                                        int64_t group_size, const OptTensor& bias) {
  const char* op = "int4_weight_only_linear";
  return qlinear_meta_output(input, check_int4_tinygemm(packed, sz, group_size, op), bias, op);
}

at::Tensor int8_dynamic_activation_int4_linear_meta(const at::Tensor& input, const at::Tensor& packed,
                                                    const at::Tensor& scale, const at::Tensor& zero_point,
                                                    int64_t group_size, const OptTensor& bias) {
  const char* op = "int8_dynamic_activation_int4_linear";
  return qlinear_meta_output(input, check_packed_groupwise(packed, scale, zero_point, 4, group_size, op), bias, op);
}

at::Tensor uintx_weight_only_linear_meta(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                         const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                         const OptTensor& bias) {
  const char* op = "uintx_weight_only_linear";
  return qlinear_meta_output(input, check_packed_groupwise(packed, scale, zero_point, bits, group_size, op), bias, op);
}

at::Tensor fpx_weight_only_linear_meta(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                       int64_t ebits, int64_t mbits, const OptTensor& bias) {
  const char* op = "fpx_weight_only_linear";
  return qlinear_meta_output(input, check_fpx_weight(packed, scale, ebits, mbits, op), bias, op);
}

at::Tensor float8_weight_only_linear_meta(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                          const OptTensor& bias) {
  const char* op = "float8_weight_only_linear";
  return qlinear_meta_output(input, check_float8_weight(weight, scale, false, op), bias, op);
}

at::Tensor float8_dynamic_activation_linear_meta(const at::Tensor& input, const at::Tensor& weight,
                                                 const at::Tensor& weight_scale, c10::string_view granularity,
                                                 const OptTensor& bias) {
  const char* op = "float8_dynamic_activation_linear";
  TORCH_CHECK(granularity == "tensor" || granularity == "row", op, ": granularity must be 'tensor' or 'row', got '",
              granularity, "'");
  return qlinear_meta_output(input, check_float8_weight(weight, weight_scale, true, op), bias, op);
}

at::Tensor int4_pack_tinygemm_meta(const at::Tensor& codes, int64_t inner_k_tiles) {
  TORCH_CHECK(false, "int4_pack_tinygemm: packing happens once, on a real device (CPU or CUDA), not under Meta");
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("int8_weight_only_linear(Tensor input, Tensor weight, Tensor scale, Tensor? bias=None) -> Tensor");
  m.def("int8_dynamic_activation_int8_linear(Tensor input, Tensor weight, Tensor weight_scale, Tensor? bias=None) "
        "-> Tensor");
  m.def("int4_pack_tinygemm(Tensor codes, int inner_k_tiles=8) -> Tensor");
  m.def("int4_weight_only_linear(Tensor input, Tensor packed_weight, Tensor scale_and_zeros, int group_size, "
        "Tensor? bias=None) -> Tensor");
  m.def("int8_dynamic_activation_int4_linear(Tensor input, Tensor packed_weight, Tensor scale, Tensor zero_point, "
        "int group_size, Tensor? bias=None) -> Tensor");
  m.def("uintx_weight_only_linear(Tensor input, Tensor packed_weight, Tensor scale, Tensor zero_point, int bits, "
        "int group_size, Tensor? bias=None) -> Tensor");
  m.def("fpx_weight_only_linear(Tensor input, Tensor packed_weight, Tensor scale, int ebits, int mbits, "
        "Tensor? bias=None) -> Tensor");
  m.def("float8_weight_only_linear(Tensor input, Tensor weight, Tensor scale, Tensor? bias=None) -> Tensor");
  m.def("float8_dynamic_activation_linear(Tensor input, Tensor weight, Tensor weight_scale, str granularity, "
        "Tensor? bias=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("int8_weight_only_linear", &int8_weight_only_linear_meta);
  m.impl("int8_dynamic_activation_int8_linear", &int8_dynamic_activation_int8_linear_meta);
  m.impl("int4_pack_tinygemm", &int4_pack_tinygemm_meta);
  m.impl("int4_weight_only_linear", &int4_weight_only_linear_meta);
  m.impl("int8_dynamic_activation_int4_linear", &int8_dynamic_activation_int4_linear_meta);
  m.impl("uintx_weight_only_linear", &uintx_weight_only_linear_meta);
  m.impl("fpx_weight_only_linear", &fpx_weight_only_linear_meta);
  m.impl("float8_weight_only_linear", &float8_weight_only_linear_meta);
  m.impl("float8_dynamic_activation_linear", &float8_dynamic_activation_linear_meta);
}

}  // namespace lowbit::ops
