// The reference kernels of the quantized linear ops (quantized_linear_reference.cpp): the
// definition of their numerics, registered at CompositeExplicitAutograd. The fast CPU kernels
// (quantized_linear_cpu.cpp) call them for the cases they do not take, and tests compare with them.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <vector>

namespace lowbit::cpu {

// Shared by the reference and the fast kernels: a (M, N) result back to the input's (..., N) shape,
// and the bias added in the output's dtype.
inline at::Tensor unflatten_rows(const at::Tensor& out2d, const at::Tensor& input) {
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = out2d.size(1);
  return out2d.reshape(shape);
}

inline at::Tensor add_bias(at::Tensor y, const std::optional<at::Tensor>& bias) {
  return bias.has_value() ? y.add_(bias->to(y.scalar_type())) : y;
}

// int4dq's activations: (M, K) rows fake-quantized to int8 per token, asymmetric, in float32 (as
// QAT's forward does), with the core ops.
at::Tensor fake_quantize_int8_per_token(const at::Tensor& x2d);

at::Tensor int8_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                       const std::optional<at::Tensor>& bias);

at::Tensor int8_dynamic_activation_int8_linear_ref(const at::Tensor& input, const at::Tensor& weight,
                                                   const at::Tensor& weight_scale,
                                                   const std::optional<at::Tensor>& bias);

at::Tensor int8_dynamic_activation_int4_linear_ref(const at::Tensor& input, const at::Tensor& packed,
                                                   const at::Tensor& scale, const at::Tensor& zero_point,
                                                   int64_t group_size, const std::optional<at::Tensor>& bias);

at::Tensor uintx_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                        const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                        const std::optional<at::Tensor>& bias);

at::Tensor fpx_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                      int64_t ebits, int64_t mbits, const std::optional<at::Tensor>& bias);

at::Tensor float8_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                         const std::optional<at::Tensor>& bias);

at::Tensor float8_dynamic_activation_linear_ref(const at::Tensor& input, const at::Tensor& weight,
                                                const at::Tensor& weight_scale, c10::string_view granularity,
                                                const std::optional<at::Tensor>& bias);

}  // namespace lowbit::cpu
