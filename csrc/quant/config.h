// QuantizeConfig: one quantized weight format with its parameters, e.g. int4 weight-only with
// group_size 128. The config is resolved once (from a constructor or a shorthand) into a format
// object, so a layer built from it calls its kernel with no strings parsed per call. Formats are
// defined one per file in csrc/quant/formats/ and register themselves (format.h); quantize_,
// QAT's convert, autoquant, save/load and the Python bindings all read that one table.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace lowbit::quant {

class QuantFormat;

// A config parameter's value: an integer (group_size, bits, ...), a string (granularity) or a dtype.
using QuantParam = std::variant<int64_t, std::string, at::ScalarType>;
// Parameters by name, as a constructor takes them (missing ones take their defaults).
using QuantParams = std::map<std::string, QuantParam>;

class QuantizeConfig {
 public:
  // An empty config (no format); every query on it is an error. Configs come from the
  // constructors below, parse_quantize_config or make_quantize_config.
  QuantizeConfig() = default;
  explicit QuantizeConfig(std::shared_ptr<const QuantFormat> format) : format_(std::move(format)) {}

  const QuantFormat& format() const;
  bool defined() const { return format_ != nullptr; }
  // The config's class, e.g. "Int4WeightOnlyConfig".
  std::string kind() const;
  // The canonical shorthand, which parse_quantize_config maps back to this config, e.g.
  // "int4wo-128", "int8dq", "float8dq_e4m3_row", "fp6_e3m2", "uint4wo-64". Saved with weights.
  std::string name() const;
  // Constructor-style text, e.g. "Int4WeightOnlyConfig(group_size=128)".
  std::string to_string() const;
  // The parameters in constructor order, e.g. {("group_size", 128)}.
  std::vector<std::pair<std::string, QuantParam>> params() const;
  // One parameter (an error naming the config and its parameters if it has no such one).
  int64_t int_param(const std::string& name) const;
  std::string string_param(const std::string& name) const;
  at::ScalarType dtype_param(const std::string& name) const;
  // Kept for API compatibility: a config is validated when it is made.
  void validate() const { (void)format(); }

  bool operator==(const QuantizeConfig& o) const { return name() == o.name(); }
  bool operator!=(const QuantizeConfig& o) const { return !(*this == o); }

 private:
  std::shared_ptr<const QuantFormat> format_;
};

// The config of class `kind` with `params` (others at their defaults); an unknown kind or
// parameter, or a bad value, is an error naming it and what is allowed.
QuantizeConfig make_quantize_config(const std::string& kind, const QuantParams& params = {});

// The constructors users call (validated; each is defined in its format's file).
QuantizeConfig Int4WeightOnlyConfig(int64_t group_size = 128);
QuantizeConfig Int8WeightOnlyConfig();
QuantizeConfig Int8DynamicActivationInt8WeightConfig();
QuantizeConfig Int8DynamicActivationInt4WeightConfig(int64_t group_size = 32);
QuantizeConfig Float8WeightOnlyConfig(at::ScalarType dtype = at::kFloat8_e4m3fn);
QuantizeConfig Float8DynamicActivationFloat8WeightConfig(const std::string& granularity = "tensor");
QuantizeConfig FPXWeightOnlyConfig(int64_t ebits, int64_t mbits);
QuantizeConfig UIntXWeightOnlyConfig(int64_t bits, int64_t group_size = 64);
// 2:4 semi-structured sparse weights ("sparse24"; lowbit::sparse::sparsify_): formats/semi_sparse_weight.cpp.
QuantizeConfig SemiSparseWeightConfig();

// The one shorthand parser: "int4wo", "int8dq", "float8dq_e4m3_row", "fp6_e3m2", "uint4wo", ...
// An unknown name throws a c10::Error that lists every valid name (Python: ValueError).
QuantizeConfig parse_quantize_config(const std::string& shorthand);

// Every shorthand parse_quantize_config accepts, in documentation order.
const std::vector<std::string>& quantize_shorthands();

// Why `config` cannot quantize an (out_features, in_features) weight of `dtype` (nullopt if it
// can): the weight dtype rule shared by every format, then the format's own shape rule.
std::optional<std::string> unsupported_reason(const QuantizeConfig& config, int64_t out_features, int64_t in_features,
                                              at::ScalarType dtype);

// "float32" / "bfloat16" / "float16": the weight dtypes quantize_ takes, as files name them.
std::string weight_dtype_name(at::ScalarType dtype);
// The inverse; an unknown name is an error naming `where` and the allowed names.
at::ScalarType weight_dtype_from_name(const std::string& name, const std::string& where);

}  // namespace lowbit::quant
