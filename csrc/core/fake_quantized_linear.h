// lowbit::core::fake_quantized_linear — QAT's linear: y = linear(fq_act(x), fq_weight(W)) + b with
// the fake quantization of lowbit::fake_quantize_affine (straight-through gradient), so the
// converted model computes what training computed. One op for both faces.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace lowbit::core {

// How one tensor is fake-quantized along its last dim: qdtype "int1".."int8" / "uint1".."uint8";
// group_size elements per scale (0: the whole last dim, i.e. per token / per channel); symmetric or
// asymmetric; zero_point_domain "int", or "float" (asymmetric only).
struct FakeQuantSpec {
  std::string qdtype = "int8";
  int64_t group_size = 0;
  bool symmetric = true;
  std::string zero_point_domain = "int";
};

// With an activation spec: activations and weight fake-quantized in float32, the GEMM in float32,
// the output cast to input's dtype (the numerics of the dynamic-activation formats). Without one
// (weight-only): the fake-quantized weight is cast to input's dtype and the GEMM runs in it (the
// numerics of the weight-only formats).
at::Tensor fake_quantized_linear(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, const FakeQuantSpec& weight_spec,
                                 const std::optional<FakeQuantSpec>& activation_spec = std::nullopt);

}  // namespace lowbit::core
