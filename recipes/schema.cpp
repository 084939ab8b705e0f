// Recipe schemas: declared keys, their checks, the defaults config and the --help table. See schema.h.
#include <lowbit/recipes/schema.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace lowbit::recipes {
namespace {

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }

std::string quoted(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  YAML::Emitter out;
  out << YAML::Flow << n;
  return out.c_str();
}

// Sets `value` at a dotted key, creating the maps on the way.
void set_at(YAML::Node root, const std::string& key, const YAML::Node& value) {
  std::stringstream parts(key);
  std::string part;
  std::vector<std::string> names;
  while (std::getline(parts, part, '.')) names.push_back(part);
  YAML::Node cur = root;
  for (std::size_t i = 0; i + 1 < names.size(); ++i) {
    if (!cur[names[i]].IsDefined() || !cur[names[i]].IsMap()) cur[names[i]] = YAML::Node(YAML::NodeType::Map);
    cur.reset(cur[names[i]]);  // reset, not =: assigning a YAML::Node writes through to the tree
  }
  cur[names.back()] = value;
}

// The default's node, carrying the declared type (a string stays a string, 1 reads as 1.0 for a float).
YAML::Node typed_default(const KeySpec& spec) {
  YAML::Node n;
  try {
    n = YAML::Load(spec.default_yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError("schema: default of '" + spec.key + "' is not YAML: " + spec.default_yaml);
  }
  const auto retype = [](YAML::Node v, ValueKind kind) {
    if (kind == ValueKind::String && v.IsScalar()) v.SetTag("!");
    if (kind == ValueKind::Float && value_kind(v) == ValueKind::Int) v = YAML::Node(v.Scalar() + ".0");
    return v;
  };
  if (spec.type.kind == ValueKind::List && n.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& item : n) out.push_back(retype(YAML::Clone(item), spec.type.element));
    return out;
  }
  return retype(n, spec.type.kind);
}

bool kind_fits(ValueKind want, ValueKind got) {
  if (want == got) return true;
  if (want == ValueKind::Float) return got == ValueKind::Int;
  if (want == ValueKind::String) return got == ValueKind::Bool || got == ValueKind::Int || got == ValueKind::Float;
  return false;
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// "" when `n` is a number satisfying `ok`, else why not.
std::string check_number(const YAML::Node& n, const std::function<bool(double)>& ok) {
  const ValueKind k = value_kind(n);
  if (k != ValueKind::Int && k != ValueKind::Float) return quoted(n) + " is not a number";
  const double v = n.as<double>();
  if (std::isnan(v) || !ok(v)) return quoted(n) + " is out of range";
  return "";
}

}  // namespace

const Type Type::Int{ValueKind::Int};
const Type Type::Float{ValueKind::Float};
const Type Type::Bool{ValueKind::Bool};
const Type Type::String{ValueKind::String};

Type Type::list_of(Type element) { return Type{ValueKind::List, element.kind}; }

std::string Type::name() const {
  if (kind == ValueKind::List) return std::string("list of ") + value_kind_name(element);
  return value_kind_name(kind);
}

Allowed anything() { return {"", nullptr}; }

Allowed one_of(std::vector<std::string> choices) {
  std::string text;
  for (const auto& c : choices) text += (text.empty() ? "" : ", ") + c;
  return {text, [choices](const YAML::Node& n) -> std::string {
            if (n.IsScalar() && std::find(choices.begin(), choices.end(), n.Scalar()) != choices.end()) return "";
            return quoted(n) + " is not one of them";
          }};
}

Allowed greater_than(double bound) {
  return {"> " + number_text(bound), [bound](const YAML::Node& n) {
            return check_number(n, [bound](double v) { return v > bound; });
          }};
}

Allowed at_least(double bound) {
  return {">= " + number_text(bound), [bound](const YAML::Node& n) {
            return check_number(n, [bound](double v) { return v >= bound; });
          }};
}

Allowed in_range(double lo, double hi) {
  return {number_text(lo) + " <= value <= " + number_text(hi), [lo, hi](const YAML::Node& n) {
            return check_number(n, [lo, hi](double v) { return v >= lo && v <= hi; });
          }};
}

Allowed custom(std::string text, std::function<std::string(const YAML::Node&)> check) {
  return {std::move(text), std::move(check)};
}

Schema& Schema::key(const std::string& key, Type type, const std::string& default_yaml, const std::string& help,
                    Allowed allowed) {
  if (key.find('.') == std::string::npos) throw ConfigError("schema: key '" + key + "' needs a section (section.name)");
  if (find(key)) throw ConfigError("schema: key '" + key + "' is declared twice");
  KeySpec spec{key, type, default_yaml, help, std::move(allowed)};
  typed_default(spec);  // a broken default fails at declaration, not at the first run
  keys_.push_back(std::move(spec));
  return *this;
}

Schema& Schema::rule(std::vector<std::string> keys, std::function<std::string(const Config&)> check) {
  rules_.push_back({std::move(keys), std::move(check)});
  return *this;
}

Schema& Schema::allow_other_sections(bool allow) {
  allow_other_sections_ = allow;
  return *this;
}

Schema& Schema::include(const Schema& other) {
  for (const auto& k : other.keys_) key(k.key, k.type, k.default_yaml, k.help, k.allowed);
  rules_.insert(rules_.end(), other.rules_.begin(), other.rules_.end());
  return *this;
}

const KeySpec* Schema::find(const std::string& key) const {
  for (const auto& k : keys_) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

Config Schema::defaults() const {
  YAML::Node root(YAML::NodeType::Map);
  std::map<std::string, std::string> origins;
  for (const auto& k : keys_) {
    set_at(root, k.key, typed_default(k));
    origins[k.key] = "default";
  }
  return Config(root, origins);
}

std::vector<std::string> Schema::problems(const Config& config) const {
  std::vector<std::string> out;
  std::vector<std::string> bad_keys;
  const auto where = [&](const std::string& key) {
    const std::string o = config.origin(key);
    return o.empty() ? std::string() : " (" + o + ")";
  };
  for (const auto& spec : keys_) {
    if (!config.has(spec.key)) {
      out.push_back("config key '" + spec.key + "' is missing (" + spec.type.name() + ")");
      bad_keys.push_back(spec.key);
      continue;
    }
    const YAML::Node n = config.node(spec.key);
    const std::string head = "config key '" + spec.key + "'" + where(spec.key) + ": ";
    std::string why;
    const ValueKind got = value_kind(n);
    if (!kind_fits(spec.type.kind, got)) {
      why = "expected " + spec.type.name() + ", got " + value_kind_name(got) + (n.IsScalar() ? " " + quoted(n) : "");
    } else if (spec.type.kind == ValueKind::List) {
      for (std::size_t i = 0; i < n.size() && why.empty(); ++i) {
        if (!kind_fits(spec.type.element, value_kind(n[i]))) {
          why = "element " + std::to_string(i) + " expected " + value_kind_name(spec.type.element) + ", got " +
                value_kind_name(value_kind(n[i]));
        } else if (spec.allowed.check) {
          const std::string r = spec.allowed.check(n[i]);
          if (!r.empty()) why = "element " + std::to_string(i) + ": " + r;
        }
      }
    } else if (spec.allowed.check) {
      why = spec.allowed.check(n);
    }
    if (!why.empty()) {
      out.push_back(head + why + (spec.allowed.text.empty() ? "" : "; allowed: " + spec.allowed.text));
      bad_keys.push_back(spec.key);
    }
  }
  for (const auto& rule : rules_) {
    // A rule over a key that is already wrong would only repeat the problem.
    const bool involved = std::any_of(rule.keys.begin(), rule.keys.end(), [&](const std::string& k) {
      return std::find(bad_keys.begin(), bad_keys.end(), k) != bad_keys.end();
    });
    if (involved) continue;
    const std::string why = rule.check(config);
    if (why.empty()) continue;
    std::string origins;
    for (const auto& k : rule.keys) {
      const std::string o = config.origin(k);
      if (!o.empty() && o != "default") origins += (origins.empty() ? "" : ", ") + k + ": " + o;
    }
    out.push_back("config: " + why + (origins.empty() ? "" : " (set at " + origins + ")"));
  }
  return out;
}

void Schema::validate(const Config& config) const {
  const std::vector<std::string> p = problems(config);
  if (p.empty()) return;
  std::string msg = p.size() == 1 ? p[0] : std::to_string(p.size()) + " config problems:";
  if (p.size() > 1) {
    for (const auto& line : p) msg += "\n  " + line;
  }
  throw ConfigError(msg);
}

Config Schema::load(const std::string& path, const std::vector<std::string>& overrides) const {
  Config config = load_config_onto(defaults(), path, overrides, allow_other_sections_);
  validate(config);
  return config;
}

std::string Schema::describe_keys(const Config* values, const std::string& origin_root) const {
  std::ostringstream out;
  std::string section;
  for (const auto& k : keys_) {
    if (section_of(k.key) != section) {
      section = section_of(k.key);
      out << "\n  " << section << ":\n";
    }
    std::string value = k.default_yaml;
    std::string origin;
    if (values && values->has(k.key)) {
      const YAML::Node n = values->node(k.key);
      if (n.IsScalar()) {
        value = n.Scalar();
      } else {
        YAML::Emitter e;
        e << YAML::Flow << n;
        value = e.c_str();
      }
      origin = values->origin(k.key);
      if (!origin_root.empty() && origin.rfind(origin_root + "/", 0) == 0) origin = origin.substr(origin_root.size() + 1);
    }
    if (k.type.kind == ValueKind::String || k.type.element == ValueKind::String) {
      if (value.empty()) value = "\"\"";
    }
    out << "    " << k.key << " (" << k.type.name() << ") = " << value;
    if (!origin.empty() && origin != "default") out << "   [" << origin << "]";
    out << "\n        " << k.help;
    if (!k.allowed.text.empty()) out << "; allowed: " << k.allowed.text;
    out << "\n";
  }
  return out.str();
}

}  // namespace lowbit::recipes
