// QAT configs: how activations and weights are fake-quantized while training, and the quantize_
// config convert() applies afterwards. One definition for both faces (Python binds these structs).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <lowbit/core/fake_quantized_linear.h>
#include <lowbit/inference/config.h>

namespace lowbit::qat {

// Fake quantization of one tensor: dtype "int1".."int8" / "uint1".."uint8"; granularity
// "per_token" / "per_channel" (one scale per row of the last dim) or "per_group" (group_size
// elements of it); symmetric or not; dynamic qparams only (from each forward's tensor);
// zero_point_domain "int", or "float" (tinygemm's; asymmetric only).
struct FakeQuantizeConfig {
  std::string dtype = "int8";
  std::string granularity = "per_token";
  int64_t group_size = 0;
  bool symmetric = true;
  bool dynamic = true;
  std::string zero_point_domain = "int";

  // Throws (c10::Error naming the field and what is allowed) if the fields are invalid.
  void validate() const;
  // The op-level description (group_size 0 for per_token / per_channel).
  core::FakeQuantSpec spec() const;
  // x through lowbit::fake_quantize_affine along its last dim (straight-through gradient).
  at::Tensor fake_quantize(const at::Tensor& x) const;
  std::string to_string() const;
};

// Activation (optional) and weight fake quantization, and the quantize_ config convert applies (an
// empty convert_to: a custom pair no quantize_ format implements, which convert refuses).
struct QATConfig {
  std::optional<FakeQuantizeConfig> activation;
  FakeQuantizeConfig weight;
  inference::QuantizeConfig convert_to;

  void validate() const;
  // "fake_quant_<convert_to name>", or "fake_quant_custom".
  std::string method_name() const;
  std::string to_string() const;
};

// Per-token asymmetric int8 activations, group-wise symmetric int4 weights -> int4dq (group_size >= 1).
QATConfig Int8DynActInt4WeightQATConfig(int64_t group_size = 32);
// Group-wise asymmetric uint4 weights with float zero points -> int4wo (tinygemm: group_size 32, 64,
// 128 or 256, checked here, not at convert).
QATConfig Int4WeightOnlyQATConfig(int64_t group_size = 128);

}  // namespace lowbit::qat
