// quantize_'s configs and their string shorthands: one definition for both faces (the Python
// classes are these structs, bound through lowbit._C).
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::inference {

// What a quantized linear stores and computes with:
//   Int4WeightOnly      uint4 codes, group-wise asymmetric, float zero point, tinygemm tile-packed
//   Int8WeightOnly      int8 per-channel symmetric
//   Int8DynamicInt8     int8 per-channel weights, per-token int8 activations, int32 accumulation
//   Int8DynamicInt4     int4 group-wise symmetric weights, per-token asymmetric int8 activations
//   Float8WeightOnly    float8 (e4m3fn or e5m2) weights with row-wise scales
//   Float8DynamicFloat8 e4m3fn weights and activations, per-tensor or per-row scales, scaled_mm
//   FpxWeightOnly       fpX_eAmB codes bit-packed, one scale per row
//   UIntxWeightOnly     uint{bits} codes bit-packed, group-wise asymmetric
enum class QuantKind {
  Int4WeightOnly,
  Int8WeightOnly,
  Int8DynamicInt8,
  Int8DynamicInt4,
  Float8WeightOnly,
  Float8DynamicFloat8,
  FpxWeightOnly,
  UIntxWeightOnly,
};

struct QuantizeConfig {
  QuantKind kind = QuantKind::Int8WeightOnly;
  int64_t group_size = 0;                              // int4wo, int4dq, uintx
  at::ScalarType float8_dtype = at::kFloat8_e4m3fn;  // float8wo, float8dq
  std::string granularity = "tensor";                // float8dq: "tensor" | "row"
  int64_t ebits = 0, mbits = 0;                        // fpx
  int64_t bits = 0;                                    // uintx

  // Throws (c10::Error naming the field and what is allowed) if the fields are invalid.
  void validate() const;
  // The canonical shorthand, which parse_quantize_config maps back to this config, e.g.
  // "int4wo-128", "int8dq", "float8dq_e4m3_row", "fp6_e3m2", "uint4wo-64". Saved with weights.
  std::string name() const;
  // Constructor-style text, e.g. "Int4WeightOnlyConfig(group_size=128)".
  std::string to_string() const;
  bool operator==(const QuantizeConfig& o) const { return name() == o.name(); }
};

// The constructors (validated).
QuantizeConfig Int4WeightOnlyConfig(int64_t group_size = 128);
QuantizeConfig Int8WeightOnlyConfig();
QuantizeConfig Int8DynamicActivationInt8WeightConfig();
QuantizeConfig Int8DynamicActivationInt4WeightConfig(int64_t group_size = 32);
QuantizeConfig Float8WeightOnlyConfig(at::ScalarType dtype = at::kFloat8_e4m3fn);
QuantizeConfig Float8DynamicActivationFloat8WeightConfig(const std::string& granularity = "tensor");
QuantizeConfig FPXWeightOnlyConfig(int64_t ebits, int64_t mbits);
QuantizeConfig UIntXWeightOnlyConfig(int64_t bits, int64_t group_size = 64);

// The one shorthand parser: "int4wo", "int8dq", "float8dq_e4m3_row", "fp6_e3m2", "uint4wo", ...
// An unknown name throws a c10::Error that lists every valid name (Python: ValueError).
QuantizeConfig parse_quantize_config(const std::string& shorthand);

// Every shorthand parse_quantize_config accepts, in documentation order.
const std::vector<std::string>& quantize_shorthands();

}  // namespace lowbit::inference
