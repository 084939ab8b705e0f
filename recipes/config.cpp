// Config loading: defaults composition, typed merging, command-line overrides. See config.h.
#include <lowbit/recipes/config.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <regex>
#include <sstream>

namespace lowbit::recipes {
namespace {

namespace fs = std::filesystem;

// Where a key of the node being merged was set, for messages and the origins map.
using OriginFn = std::function<std::string(const std::string& key, const YAML::Node& node)>;

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string mark_origin(const std::string& file, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return file;
  return file + ":" + std::to_string(mark.line + 1);
}

// The child of a map node at `key`, or an invalid/undefined node (without creating it).
YAML::Node find_child(const YAML::Node& map, const std::string& key) {
  if (!map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& item : map) {
    if (item.first.Scalar() == key) return item.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string known_keys(const YAML::Node& map) {
  std::string out;
  if (!map.IsMap()) return out;
  for (const auto& item : map) out += (out.empty() ? "" : ", ") + item.first.Scalar();
  return out;
}

// Records `origin` for every leaf under `node` (lists are leaves).
void record_origins(const YAML::Node& node, const std::string& key, const OriginFn& origin_of,
                    std::map<std::string, std::string>& origins) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      const std::string sub = join_key(key, item.first.Scalar());
      if (item.second.IsMap()) origins[sub] = origin_of(sub, item.first);  // a section: where its name is
      record_origins(item.second, sub, origin_of, origins);
    }
  } else {
    origins[key] = origin_of(key, node);
  }
}

bool is_scalar_kind(ValueKind k) {
  return k == ValueKind::Bool || k == ValueKind::Int || k == ValueKind::Float || k == ValueKind::String;
}

// Whether a value of kind `incoming` may replace one of kind `existing`.
bool compatible(ValueKind existing, ValueKind incoming) {
  if (existing == ValueKind::Null || incoming == ValueKind::Null) return true;
  if (existing == ValueKind::Float) return incoming == ValueKind::Float || incoming == ValueKind::Int;
  if (existing == ValueKind::String) return is_scalar_kind(incoming);
  return existing == incoming;
}

// A copy of `incoming` made to carry `existing`'s type: ints become floats where a float was,
// scalars become strings where a string was (so the Python face sees the declared type).
YAML::Node coerce(const YAML::Node& existing, const YAML::Node& incoming) {
  const ValueKind ke = value_kind(existing);
  const ValueKind ki = value_kind(incoming);
  if (ke == ValueKind::Float && ki == ValueKind::Int) {
    std::ostringstream s;
    s << incoming.Scalar() << ".0";
    return YAML::Node(s.str());
  }
  if (ke == ValueKind::String && ki != ValueKind::String) {
    YAML::Node n(incoming.Scalar());
    n.SetTag("!");  // the non-specific tag: a string, even if it reads like a number
    return n;
  }
  if (ke == ValueKind::List && ki == ValueKind::List && existing.size() > 0) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& item : incoming) out.push_back(coerce(existing[0], item));
    return out;
  }
  return YAML::Clone(incoming);
}

// Checks that `incoming` may replace `existing` at `key`; `where` is file:line or "command line".
void check_type(const YAML::Node& existing, const YAML::Node& incoming, const std::string& key,
                const std::string& where) {
  const ValueKind ke = value_kind(existing);
  const ValueKind ki = value_kind(incoming);
  if (!compatible(ke, ki)) {
    throw ConfigError("config key '" + key + "' (" + where + "): expected " + value_kind_name(ke) + ", got " +
                      value_kind_name(ki) + (incoming.IsScalar() ? " '" + incoming.Scalar() + "'" : ""));
  }
  if (ke == ValueKind::List && ki == ValueKind::List && existing.size() > 0) {
    const ValueKind elem = value_kind(existing[0]);
    for (std::size_t i = 0; i < incoming.size(); ++i) {
      if (!compatible(elem, value_kind(incoming[i]))) {
        throw ConfigError("config key '" + key + "' (" + where + "): element " + std::to_string(i) +
                          " expected " + value_kind_name(elem) + ", got " + value_kind_name(value_kind(incoming[i])));
      }
    }
  }
}

// Merges map `src` into map `dst` key by key. New keys are allowed only when `allow_new`; an
// unknown key is an error saying `unknown_reason`.
void merge(YAML::Node dst, const YAML::Node& src, const std::string& prefix, bool allow_new,
           const OriginFn& origin_of, std::map<std::string, std::string>& origins,
           const char* unknown_reason = "not defined by the defaults") {
  for (const auto& item : src) {
    const std::string name = item.first.Scalar();
    const std::string key = join_key(prefix, name);
    const YAML::Node value = item.second;
    YAML::Node existing = find_child(dst, name);
    if (!existing.IsDefined()) {
      if (!allow_new) {
        throw ConfigError("unknown config key '" + key + "' (" + origin_of(key, item.first) + "): " +
                          unknown_reason + "; known keys" +
                          (prefix.empty() ? "" : " under '" + prefix + "'") + ": " + known_keys(dst));
      }
      dst[name] = YAML::Clone(value);
      if (value.IsMap()) origins[key] = origin_of(key, item.first);  // a section: where its name is
      record_origins(value, key, origin_of, origins);
      continue;
    }
    check_type(existing, value, key, origin_of(key, value));
    if (existing.IsMap() && value.IsMap()) {
      merge(existing, value, key, allow_new, origin_of, origins, unknown_reason);
    } else {
      dst[name] = coerce(existing, value);
      record_origins(value, key, origin_of, origins);
    }
  }
}

struct Loaded {
  YAML::Node tree;
  std::map<std::string, std::string> origins;
};

fs::path resolve_default(const std::string& entry, const fs::path& file_dir, const fs::path& root_dir) {
  fs::path rel(entry);
  if (rel.extension() != ".yaml" && rel.extension() != ".yml") rel += ".yaml";
  if (rel.is_absolute()) return rel;
  if (fs::exists(file_dir / rel)) return file_dir / rel;
  if (fs::exists(root_dir / rel)) return root_dir / rel;
  return file_dir / rel;
}

// `permissive`: every file may add keys (a schema's defaults define them instead).
Loaded load_file(const fs::path& path, const fs::path& root_dir, std::vector<std::string>& stack, bool permissive) {
  const std::string file = path.lexically_normal().string();
  for (const auto& open : stack) {
    if (open == file) throw ConfigError("config " + file + ": defaults form a cycle");
  }
  if (!fs::exists(path)) throw ConfigError("config file not found: " + file);
  YAML::Node body;
  try {
    body = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    throw ConfigError("config " + file + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (body.IsNull()) body = YAML::Node(YAML::NodeType::Map);
  if (!body.IsMap()) throw ConfigError("config " + file + ": the top level must be a map of keys");

  stack.push_back(file);
  // The defaults list, with "_self_" (this file's own keys) last unless placed elsewhere.
  std::vector<std::pair<std::string, YAML::Node>> entries;
  bool has_self = false;
  if (const YAML::Node defaults = find_child(body, "defaults"); defaults.IsDefined() && !defaults.IsNull()) {
    if (!defaults.IsSequence()) {
      throw ConfigError("config key 'defaults' (" + mark_origin(file, defaults) + "): expected a list of files");
    }
    for (const auto& d : defaults) {
      std::string entry;
      if (d.IsScalar()) {
        entry = d.Scalar();
      } else if (d.IsMap() && d.size() == 1) {  // Hydra's group form: {model: tiny} -> model/tiny
        entry = d.begin()->first.Scalar() + "/" + d.begin()->second.Scalar();
      } else {
        throw ConfigError("config key 'defaults' (" + mark_origin(file, d) +
                          "): each entry is a file path or {group: option}");
      }
      has_self = has_self || entry == "_self_";
      entries.emplace_back(entry, d);
    }
  }
  if (!has_self) entries.emplace_back("_self_", YAML::Node());

  Loaded out{YAML::Node(YAML::NodeType::Map), {}};
  bool seen_default = false;
  for (const auto& [entry, mark_node] : entries) {
    if (entry == "_self_") {
      YAML::Node own(YAML::NodeType::Map);
      for (const auto& item : body) {
        if (item.first.Scalar() != "defaults") own[item.first.Scalar()] = item.second;
      }
      const OriginFn origin = [&](const std::string& key, const YAML::Node& n) {
        if (!n.Mark().is_null()) return mark_origin(file, n);
        for (const auto& item : body) {  // a top-level key of `own` (rebuilt above): its line in the file
          if (item.first.Scalar() == key) return mark_origin(file, item.first);
        }
        return file;
      };
      merge(out.tree, own, "", /*allow_new=*/permissive || !seen_default, origin, out.origins);
      continue;
    }
    seen_default = true;
    const fs::path child_path = resolve_default(entry, path.parent_path(), root_dir);
    if (!fs::exists(child_path)) {
      throw ConfigError("config " + mark_origin(file, mark_node) + ": default '" + entry + "' not found (looked for " +
                        child_path.lexically_normal().string() + ")");
    }
    Loaded child = load_file(child_path, root_dir, stack, permissive);
    const OriginFn origin = [&](const std::string& key, const YAML::Node&) {
      auto it = child.origins.find(key);
      return it != child.origins.end() ? it->second : child_path.lexically_normal().string();
    };
    merge(out.tree, child.tree, "", /*allow_new=*/true, origin, out.origins);
  }
  stack.pop_back();
  return out;
}

const std::regex& int_pattern() {
  static const std::regex re("[-+]?[0-9]+");
  return re;
}

}  // namespace

const char* value_kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::Null: return "null";
    case ValueKind::Bool: return "bool";
    case ValueKind::Int: return "int";
    case ValueKind::Float: return "float";
    case ValueKind::String: return "string";
    case ValueKind::List: return "list";
    case ValueKind::Map: return "map";
  }
  return "?";
}

ValueKind value_kind(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return ValueKind::Null;
  if (node.IsSequence()) return ValueKind::List;
  if (node.IsMap()) return ValueKind::Map;
  // Quoted scalars carry the non-specific tag "!": always strings.
  if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return ValueKind::String;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "false" || s == "True" || s == "False" || s == "TRUE" || s == "FALSE") {
    return ValueKind::Bool;
  }
  if (std::regex_match(s, int_pattern())) return ValueKind::Int;
  if (s == ".inf" || s == "-.inf" || s == "+.inf" || s == ".nan") return ValueKind::Float;
  if (!s.empty()) {
    char* end = nullptr;
    std::strtod(s.c_str(), &end);
    const bool numeric_start = std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+' ||
                               s[0] == '.';
    if (numeric_start && end == s.c_str() + s.size()) return ValueKind::Float;
  }
  return ValueKind::String;
}

Config::Config(YAML::Node root, std::map<std::string, std::string> origins)
    : root_(std::move(root)), origins_(std::move(origins)) {}

std::string Config::origin(const std::string& key) const {
  auto it = origins_.find(key);
  return it == origins_.end() ? "" : it->second;
}

bool Config::has(const std::string& key) const {
  YAML::Node cur = root_;
  std::stringstream parts(key);
  std::string part;
  while (std::getline(parts, part, '.')) {
    cur.reset(find_child(cur, part));  // reset, not =: assigning a YAML::Node writes through to the tree
    if (!cur.IsDefined()) return false;
  }
  return true;
}

YAML::Node Config::node(const std::string& key) const {
  YAML::Node cur = root_;
  std::string prefix;
  std::stringstream parts(key);
  std::string part;
  while (std::getline(parts, part, '.')) {
    YAML::Node next = find_child(cur, part);
    if (!next.IsDefined()) {
      throw ConfigError("unknown config key '" + key + "'; known keys" +
                        (prefix.empty() ? "" : " under '" + prefix + "'") + ": " + known_keys(cur));
    }
    prefix = join_key(prefix, part);
    cur.reset(next);  // reset, not =: assigning a YAML::Node writes through to the tree
  }
  return cur;
}

namespace {
[[noreturn]] void wrong_type(const Config& c, const std::string& key, const char* want, const YAML::Node& n) {
  std::string where = c.origin(key);
  throw ConfigError("config key '" + key + "'" + (where.empty() ? "" : " (" + where + ")") + ": expected " + want +
                    ", got " + value_kind_name(value_kind(n)) + (n.IsScalar() ? " '" + n.Scalar() + "'" : ""));
}
}  // namespace

int64_t Config::get_int(const std::string& key) const {
  YAML::Node n = node(key);
  if (value_kind(n) != ValueKind::Int) wrong_type(*this, key, "int", n);
  return n.as<int64_t>();
}

double Config::get_float(const std::string& key) const {
  YAML::Node n = node(key);
  ValueKind k = value_kind(n);
  if (k != ValueKind::Float && k != ValueKind::Int) wrong_type(*this, key, "float", n);
  return n.as<double>();
}

bool Config::get_bool(const std::string& key) const {
  YAML::Node n = node(key);
  if (value_kind(n) != ValueKind::Bool) wrong_type(*this, key, "bool", n);
  return n.as<bool>();
}

std::string Config::get_string(const std::string& key) const {
  YAML::Node n = node(key);
  if (!n.IsScalar()) wrong_type(*this, key, "string", n);
  return n.Scalar();
}

std::vector<int64_t> Config::get_int_list(const std::string& key) const {
  YAML::Node n = node(key);
  if (!n.IsSequence()) wrong_type(*this, key, "list of int", n);
  std::vector<int64_t> out;
  for (const auto& item : n) {
    if (value_kind(item) != ValueKind::Int) wrong_type(*this, key, "list of int", n);
    out.push_back(item.as<int64_t>());
  }
  return out;
}

std::vector<std::string> Config::get_string_list(const std::string& key) const {
  YAML::Node n = node(key);
  if (!n.IsSequence()) wrong_type(*this, key, "list of string", n);
  std::vector<std::string> out;
  for (const auto& item : n) {
    if (!item.IsScalar()) wrong_type(*this, key, "list of string", n);
    out.push_back(item.Scalar());
  }
  return out;
}

void Config::apply_override(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("override '" + assignment + "': expected key.sub=value");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("config key '" + key + "' (command line): cannot parse value '" + text + "': " + e.msg);
  }
  // Walk to the parent map, so that the error for a missing key lists its siblings.
  const auto dot = key.rfind('.');
  const std::string parent_key = dot == std::string::npos ? "" : key.substr(0, dot);
  const std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
  if (!parent_key.empty() && !has(parent_key)) {
    try {
      node(parent_key);
    } catch (const ConfigError& e) {
      throw ConfigError("unknown config key '" + key + "' (command line): " + e.what());
    }
  }
  YAML::Node parent = parent_key.empty() ? root_ : node(parent_key);
  YAML::Node existing = find_child(parent, leaf);
  if (!existing.IsDefined()) {
    throw ConfigError("unknown config key '" + key + "' (command line); known keys" +
                      (parent_key.empty() ? "" : " under '" + parent_key + "'") + ": " + known_keys(parent));
  }
  check_type(existing, value, key, "command line");
  if (existing.IsMap()) {
    merge(existing, value, key, /*allow_new=*/false, [](const std::string&, const YAML::Node&) { return "command line"; },
          origins_);
  } else {
    parent[leaf] = coerce(existing, value);
    origins_[key] = "command line";
  }
}

std::string Config::dump() const {
  YAML::Emitter out;
  out << root_;
  return std::string(out.c_str()) + "\n";
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::vector<std::string> stack;
  const fs::path p(path);
  Loaded loaded = load_file(p, p.parent_path(), stack, /*permissive=*/false);
  Config config(loaded.tree, loaded.origins);
  for (const auto& o : overrides) config.apply_override(o);
  return config;
}

Config load_config_onto(const Config& base, const std::string& path, const std::vector<std::string>& overrides,
                        bool allow_other_sections) {
  std::vector<std::string> stack;
  const fs::path p(path);
  const Loaded loaded = load_file(p, p.parent_path(), stack, /*permissive=*/true);
  YAML::Node tree = YAML::Clone(base.root());
  std::map<std::string, std::string> origins = base.origins();
  // The file:line of a key, or of the first leaf under it (a whole unknown section).
  const OriginFn origin = [&](const std::string& key, const YAML::Node&) -> std::string {
    auto it = loaded.origins.lower_bound(key);
    if (it != loaded.origins.end() && (it->first == key || it->first.rfind(key + ".", 0) == 0)) return it->second;
    return p.lexically_normal().string();
  };
  YAML::Node known(YAML::NodeType::Map);
  for (const auto& item : loaded.tree) {
    const std::string name = item.first.Scalar();
    if (allow_other_sections && !find_child(tree, name).IsDefined()) {
      tree[name] = YAML::Clone(item.second);
      record_origins(item.second, name, origin, origins);
    } else {
      known[name] = item.second;
    }
  }
  merge(tree, known, "", /*allow_new=*/false, origin, origins, "not a key of this recipe");
  Config config(tree, origins);
  for (const auto& o : overrides) config.apply_override(o);
  return config;
}

}  // namespace lowbit::recipes
