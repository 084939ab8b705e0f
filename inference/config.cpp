#include <lowbit/inference/config.h>

#include <c10/util/Exception.h>

#include <initializer_list>
#include <map>
#include <utility>

namespace lowbit::inference {
namespace {

bool is_tinygemm_group(int64_t g) { return g == 32 || g == 64 || g == 128 || g == 256; }

std::string float8_short(at::ScalarType t) { return t == at::kFloat8_e5m2 ? "e5m2" : "e4m3"; }

// Every shorthand with its config, in documentation order (quantize_shorthands lists the keys).
const std::vector<std::pair<std::string, QuantizeConfig>>& shorthand_table() {
  static const auto table = [] {
    std::vector<std::pair<std::string, QuantizeConfig>> t;
    // Aliases of one config, and "<prefix>-<g>" for each group size g.
    auto add = [&](std::initializer_list<const char*> names, const QuantizeConfig& c) {
      for (const char* n : names) t.emplace_back(n, c);
    };
    auto add_groups = [&](const std::string& prefix, QuantizeConfig (*make)(int64_t)) {
      for (int64_t g : {32, 64, 128, 256}) t.emplace_back(prefix + "-" + std::to_string(g), make(g));
    };
    add({"int4wo", "int4_weight_only", "int_a16w4"}, Int4WeightOnlyConfig());
    add_groups("int4wo", [](int64_t g) { return Int4WeightOnlyConfig(g); });
    add({"int8wo", "int8_weight_only", "int_a16w8"}, Int8WeightOnlyConfig());
    add({"int8dq", "int8_dynamic_activation_int8_weight", "int_a8w8"}, Int8DynamicActivationInt8WeightConfig());
    add({"int4dq", "int8_dynamic_activation_int4_weight", "int_a8w4"}, Int8DynamicActivationInt4WeightConfig());
    add_groups("int4dq", [](int64_t g) { return Int8DynamicActivationInt4WeightConfig(g); });
    add({"float8wo", "float8wo_e4m3", "float8_weight_only", "float8_e4m3_a16w8", "float_a16w8"},
        Float8WeightOnlyConfig(at::kFloat8_e4m3fn));
    add({"float8wo_e5m2", "float8_e5m2_a16w8"}, Float8WeightOnlyConfig(at::kFloat8_e5m2));
    add({"float8dq", "float8dq_e4m3", "float8dq_e4m3_tensor", "float8_e4m3_tensor",
         "float8_dynamic_activation_float8_weight", "float_a8w8"},
        Float8DynamicActivationFloat8WeightConfig("tensor"));
    add({"float8dq_e4m3_row", "float8_e4m3_row"}, Float8DynamicActivationFloat8WeightConfig("row"));
    for (int64_t x = 2; x <= 7; ++x) {
      for (int64_t e = 1; e <= x - 1; ++e) {
        const int64_t m = x - 1 - e;
        t.emplace_back("fp" + std::to_string(x) + "_e" + std::to_string(e) + "m" + std::to_string(m),
                       FPXWeightOnlyConfig(e, m));
      }
    }
    // float_a16wX: the usual fpX split (more exponent bits as X grows).
    const std::map<int64_t, std::pair<int64_t, int64_t>> fp_split = {
        {3, {1, 1}}, {4, {2, 1}}, {5, {2, 2}}, {6, {3, 2}}, {7, {3, 3}}};
    for (const auto& [x, em] : fp_split)
      t.emplace_back("float_a16w" + std::to_string(x), FPXWeightOnlyConfig(em.first, em.second));
    for (int64_t b = 1; b <= 7; ++b) t.emplace_back("uint" + std::to_string(b) + "wo", UIntXWeightOnlyConfig(b));
    for (int64_t b = 1; b <= 7; ++b) {
      for (int64_t g : {32, 64, 128, 256})
        t.emplace_back("uint" + std::to_string(b) + "wo-" + std::to_string(g), UIntXWeightOnlyConfig(b, g));
    }
    for (int64_t b = 1; b <= 7; ++b) t.emplace_back("uint_a16w" + std::to_string(b), UIntXWeightOnlyConfig(b));
    return t;
  }();
  return table;
}

}  // namespace

void QuantizeConfig::validate() const {
  switch (kind) {
    case QuantKind::Int4WeightOnly:
      TORCH_CHECK(is_tinygemm_group(group_size), "Int4WeightOnlyConfig: group_size must be 32, 64, 128 or 256 "
                  "(tinygemm's tiles), got ", group_size);
      break;
    case QuantKind::Int8DynamicInt4:
    case QuantKind::UIntxWeightOnly:
      TORCH_CHECK(group_size >= 1, to_string(), ": group_size must be >= 1, got ", group_size);
      if (kind == QuantKind::UIntxWeightOnly) {
        TORCH_CHECK(bits >= 1 && bits <= 7, "UIntXWeightOnlyConfig: bits must be in 1..7 (8 is int8wo), got ", bits);
      }
      break;
    case QuantKind::Float8WeightOnly:
      TORCH_CHECK(float8_dtype == at::kFloat8_e4m3fn || float8_dtype == at::kFloat8_e5m2,
                  "Float8WeightOnlyConfig: dtype must be torch.float8_e4m3fn or torch.float8_e5m2, got ", float8_dtype);
      break;
    case QuantKind::Float8DynamicFloat8:
      TORCH_CHECK(granularity == "tensor" || granularity == "row",
                  "Float8DynamicActivationFloat8WeightConfig: granularity must be 'tensor' or 'row', got '",
                  granularity, "'");
      break;
    case QuantKind::FpxWeightOnly:
      TORCH_CHECK(ebits >= 1 && mbits >= 0 && 1 + ebits + mbits <= 7, "FPXWeightOnlyConfig: ebits=", ebits,
                  ", mbits=", mbits, " is not a valid fpX; allowed: ebits >= 1, mbits >= 0, 1 + ebits + mbits <= 7 "
                  "(8-bit floats are Float8WeightOnlyConfig)");
      break;
    case QuantKind::Int8WeightOnly:
    case QuantKind::Int8DynamicInt8:
      break;
  }
}

std::string QuantizeConfig::name() const {
  const std::string g = std::to_string(group_size);
  switch (kind) {
    case QuantKind::Int4WeightOnly: return "int4wo-" + g;
    case QuantKind::Int8WeightOnly: return "int8wo";
    case QuantKind::Int8DynamicInt8: return "int8dq";
    case QuantKind::Int8DynamicInt4: return "int4dq-" + g;
    case QuantKind::Float8WeightOnly: return "float8wo_" + float8_short(float8_dtype);
    case QuantKind::Float8DynamicFloat8: return "float8dq_e4m3_" + granularity;
    case QuantKind::FpxWeightOnly:
      return "fp" + std::to_string(1 + ebits + mbits) + "_e" + std::to_string(ebits) + "m" + std::to_string(mbits);
    case QuantKind::UIntxWeightOnly: return "uint" + std::to_string(bits) + "wo-" + g;
  }
  return "?";
}

std::string QuantizeConfig::to_string() const {
  const std::string g = std::to_string(group_size);
  switch (kind) {
    case QuantKind::Int4WeightOnly: return "Int4WeightOnlyConfig(group_size=" + g + ")";
    case QuantKind::Int8WeightOnly: return "Int8WeightOnlyConfig()";
    case QuantKind::Int8DynamicInt8: return "Int8DynamicActivationInt8WeightConfig()";
    case QuantKind::Int8DynamicInt4: return "Int8DynamicActivationInt4WeightConfig(group_size=" + g + ")";
    case QuantKind::Float8WeightOnly:
      return std::string("Float8WeightOnlyConfig(dtype=torch.") +
             (float8_dtype == at::kFloat8_e5m2 ? "float8_e5m2" : "float8_e4m3fn") + ")";
    case QuantKind::Float8DynamicFloat8:
      return "Float8DynamicActivationFloat8WeightConfig(granularity=\"" + granularity + "\")";
    case QuantKind::FpxWeightOnly:
      return "FPXWeightOnlyConfig(ebits=" + std::to_string(ebits) + ", mbits=" + std::to_string(mbits) + ")";
    case QuantKind::UIntxWeightOnly:
      return "UIntXWeightOnlyConfig(bits=" + std::to_string(bits) + ", group_size=" + g + ")";
  }
  return "?";
}

QuantizeConfig Int4WeightOnlyConfig(int64_t group_size) {
  QuantizeConfig c;
  c.kind = QuantKind::Int4WeightOnly;
  c.group_size = group_size;
  c.validate();
  return c;
}

QuantizeConfig Int8WeightOnlyConfig() {
  QuantizeConfig c;
  c.kind = QuantKind::Int8WeightOnly;
  return c;
}

QuantizeConfig Int8DynamicActivationInt8WeightConfig() {
  QuantizeConfig c;
  c.kind = QuantKind::Int8DynamicInt8;
  return c;
}

QuantizeConfig Int8DynamicActivationInt4WeightConfig(int64_t group_size) {
  QuantizeConfig c;
  c.kind = QuantKind::Int8DynamicInt4;
  c.group_size = group_size;
  c.validate();
  return c;
}

QuantizeConfig Float8WeightOnlyConfig(at::ScalarType dtype) {
  QuantizeConfig c;
  c.kind = QuantKind::Float8WeightOnly;
  c.float8_dtype = dtype;
  c.validate();
  return c;
}

QuantizeConfig Float8DynamicActivationFloat8WeightConfig(const std::string& granularity) {
  QuantizeConfig c;
  c.kind = QuantKind::Float8DynamicFloat8;
  c.granularity = granularity;
  c.validate();
  return c;
}

QuantizeConfig FPXWeightOnlyConfig(int64_t ebits, int64_t mbits) {
  QuantizeConfig c;
  c.kind = QuantKind::FpxWeightOnly;
  c.ebits = ebits;
  c.mbits = mbits;
  c.validate();
  return c;
}

QuantizeConfig UIntXWeightOnlyConfig(int64_t bits, int64_t group_size) {
  QuantizeConfig c;
  c.kind = QuantKind::UIntxWeightOnly;
  c.bits = bits;
  c.group_size = group_size;
  c.validate();
  return c;
}

QuantizeConfig parse_quantize_config(const std::string& shorthand) {
  for (const auto& [name, config] : shorthand_table()) {
    if (name == shorthand) return config;
  }
  std::string valid;
  for (const auto& name : quantize_shorthands()) valid += (valid.empty() ? "" : ", ") + name;
  TORCH_CHECK(false, "quantize_: unknown config shorthand '", shorthand, "'; valid names: ", valid);
}

const std::vector<std::string>& quantize_shorthands() {
  static const auto names = [] {
    std::vector<std::string> n;
    for (const auto& entry : shorthand_table()) n.push_back(entry.first);
    return n;
  }();
  return names;
}

}  // namespace lowbit::inference
