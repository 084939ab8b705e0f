// The format table (filled by the format files at load time), QuantizeConfig and the shorthand parser.
#include <lowbit/quant/config.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <sstream>

#include <lowbit/quant/format.h>

namespace lowbit::quant {
namespace {

struct Registry {
  std::mutex mutex;
  std::vector<FormatFamily> families;  // sorted by order once every format file has registered
};

Registry& registry() {
  static Registry r;
  return r;
}

const FormatFamily* find_family(const std::string& kind) {
  for (const FormatFamily* f : format_families()) {
    if (f->kind == kind) return f;
  }
  return nullptr;
}

std::string param_text(const QuantParam& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return "\"" + *s + "\"";
  // torch's names: float8_e4m3fn, float8_e5m2, bfloat16, ...
  std::string name = c10::toString(std::get<at::ScalarType>(v));
  if (name == "Float") return "torch.float32";
  if (name == "Half") return "torch.float16";
  name[0] = static_cast<char>(std::tolower(name[0]));
  return "torch." + name;
}

// (shorthand, config) pairs of every family, built once on first use (after static init).
const std::vector<std::pair<std::string, QuantizeConfig>>& shorthand_table() {
  static const auto table = [] {
    std::vector<std::pair<std::string, QuantizeConfig>> t;
    for (const FormatFamily* f : format_families()) {
      for (auto& entry : f->shorthands()) t.push_back(std::move(entry));
    }
    return t;
  }();
  return table;
}

}  // namespace

bool register_format_family(FormatFamily family) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.families.push_back(std::move(family));
  std::stable_sort(r.families.begin(), r.families.end(),
                   [](const FormatFamily& a, const FormatFamily& b) { return a.order < b.order; });
  return true;
}

std::vector<const FormatFamily*> format_families() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<const FormatFamily*> out;
  for (const FormatFamily& f : r.families) out.push_back(&f);
  return out;
}

const QuantFormat& QuantizeConfig::format() const {
  TORCH_CHECK(format_, "QuantizeConfig: this config is empty; make one with a constructor such as "
              "Int8WeightOnlyConfig() or with parse_quantize_config(\"int8wo\")");
  return *format_;
}

std::string QuantizeConfig::kind() const { return format().kind(); }
std::string QuantizeConfig::name() const { return format().name(); }
std::vector<std::pair<std::string, QuantParam>> QuantizeConfig::params() const { return format().params(); }

std::string QuantizeConfig::to_string() const {
  std::ostringstream out;
  out << kind() << "(";
  bool first = true;
  for (const auto& [name, value] : params()) {
    out << (first ? "" : ", ") << name << "=" << param_text(value);
    first = false;
  }
  out << ")";
  return out.str();
}

namespace {
const QuantParam& find_param(const QuantizeConfig& c, const std::string& name,
                             std::vector<std::pair<std::string, QuantParam>>& storage) {
  storage = c.params();
  for (const auto& [n, v] : storage) {
    if (n == name) return v;
  }
  std::string names;
  for (const auto& [n, v] : storage) names += (names.empty() ? "" : ", ") + n;
  TORCH_CHECK(false, c.to_string(), " has no parameter '", name, "'; its parameters: ",
              names.empty() ? "none" : names);
}
}  // namespace

int64_t QuantizeConfig::int_param(const std::string& name) const {
  std::vector<std::pair<std::string, QuantParam>> storage;
  const QuantParam& v = find_param(*this, name, storage);
  TORCH_CHECK(std::holds_alternative<int64_t>(v), to_string(), ": parameter '", name, "' is not an integer");
  return std::get<int64_t>(v);
}

std::string QuantizeConfig::string_param(const std::string& name) const {
  std::vector<std::pair<std::string, QuantParam>> storage;
  const QuantParam& v = find_param(*this, name, storage);
  TORCH_CHECK(std::holds_alternative<std::string>(v), to_string(), ": parameter '", name, "' is not a string");
  return std::get<std::string>(v);
}

at::ScalarType QuantizeConfig::dtype_param(const std::string& name) const {
  std::vector<std::pair<std::string, QuantParam>> storage;
  const QuantParam& v = find_param(*this, name, storage);
  TORCH_CHECK(std::holds_alternative<at::ScalarType>(v), to_string(), ": parameter '", name, "' is not a dtype");
  return std::get<at::ScalarType>(v);
}

QuantizeConfig make_quantize_config(const std::string& kind, const QuantParams& params) {
  const FormatFamily* family = find_family(kind);
  if (!family) {
    std::string kinds;
    for (const FormatFamily* f : format_families()) kinds += (kinds.empty() ? "" : ", ") + f->kind;
    TORCH_CHECK(false, "unknown quantize config '", kind, "'; allowed: ", kinds);
  }
  QuantParams complete;
  std::string names;
  for (const auto& p : family->params) {
    names += (names.empty() ? "" : ", ") + p.name;
    auto it = params.find(p.name);
    if (it != params.end()) {
      complete[p.name] = it->second;
    } else {
      TORCH_CHECK(p.default_value, kind, ": missing required parameter '", p.name, "'");
      complete[p.name] = *p.default_value;
    }
  }
  for (const auto& [name, value] : params) {
    TORCH_CHECK(complete.count(name), kind, ": unknown parameter '", name, "'; allowed: ",
                names.empty() ? "none" : names);
  }
  return family->make(complete);
}

QuantizeConfig parse_quantize_config(const std::string& shorthand) {
  for (const auto& [name, config] : shorthand_table()) {
    if (name == shorthand) return config;
  }
  for (const FormatFamily* f : format_families()) {
    if (!f->parse_name) continue;
    if (auto config = f->parse_name(shorthand)) return *config;
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

std::optional<std::string> unsupported_reason(const QuantizeConfig& config, int64_t out_features, int64_t in_features,
                                              at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    return std::string("weight dtype ") + c10::toString(dtype) + " is not float32 / bfloat16 / float16";
  }
  if (out_features <= 0 || in_features <= 0) {
    return "(out_features, in_features) = (" + std::to_string(out_features) + ", " + std::to_string(in_features) +
           ") has no weights to quantize";
  }
  return config.format().shape_reason(out_features, in_features);
}

std::string weight_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default:
      TORCH_CHECK(false, "quantized weights of dtype ", dtype, " are not supported; allowed: float32, bfloat16, float16");
  }
}

at::ScalarType weight_dtype_from_name(const std::string& name, const std::string& where) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  TORCH_CHECK(false, where, ": unknown dtype '", name, "'; allowed: float32, bfloat16, float16");
}

int64_t param_int(const QuantParams& p, const std::string& kind, const std::string& name) {
  auto it = p.find(name);
  TORCH_CHECK(it != p.end(), kind, ": missing parameter '", name, "'");
  TORCH_CHECK(std::holds_alternative<int64_t>(it->second), kind, ": ", name, " must be an integer");
  return std::get<int64_t>(it->second);
}

std::string param_string(const QuantParams& p, const std::string& kind, const std::string& name) {
  auto it = p.find(name);
  TORCH_CHECK(it != p.end(), kind, ": missing parameter '", name, "'");
  TORCH_CHECK(std::holds_alternative<std::string>(it->second), kind, ": ", name, " must be a string");
  return std::get<std::string>(it->second);
}

at::ScalarType param_dtype(const QuantParams& p, const std::string& kind, const std::string& name) {
  auto it = p.find(name);
  TORCH_CHECK(it != p.end(), kind, ": missing parameter '", name, "'");
  TORCH_CHECK(std::holds_alternative<at::ScalarType>(it->second), kind, ": ", name, " must be a torch dtype");
  return std::get<at::ScalarType>(it->second);
}

}  // namespace lowbit::quant
