// Recipe configs: YAML files composed Hydra-style, plus `key.sub=value` command-line overrides.
//
//   # recipes/configs/pretrain_tiny.yaml
//   defaults: [model/tiny, optim/adamw8bit]   # composed in order, relative to this file
//   train: {steps: 200}                       # the file's own keys come last and win
//
// Rules (the same for the C++ recipes and, through lowbit._C, the Python ones):
//  - `defaults:` entries are paths relative to the file (".yaml" optional), loaded recursively;
//    later entries and finally the file's own keys override earlier ones, maps merge key by key.
//  - The files listed in `defaults:` define the keys. A file's own keys may add keys only when it
//    has no defaults; otherwise a key that no default defines is an error naming file:line.
//    (The recipes load onto a schema instead, which defines every key: see schema.h.)
//  - An override (from a later file or the command line) must keep the value's type: int, float
//    (an int literal is accepted), bool, string, list (element types checked too), or map.
//    A null value accepts anything. Errors name the key and, for files, file:line.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit::recipes {

// Every config mistake: the message names the key and, where it came from a file, file:line.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The type of a scalar or node, as the type checks see it.
enum class ValueKind { Null, Bool, Int, Float, String, List, Map };
const char* value_kind_name(ValueKind kind);
// Infers the kind of a YAML node (plain scalars: true/false -> Bool, integers -> Int, ...).
ValueKind value_kind(const YAML::Node& node);

// A resolved config: a YAML map tree plus where each leaf was last set ("file:line" or
// "command line"), with typed getters that name the key in their errors.
class Config {
 public:
  Config() = default;
  Config(YAML::Node root, std::map<std::string, std::string> origins);

  const YAML::Node& root() const { return root_; }
  // Where each leaf was last set (dotted key -> "file:line", "command line" or "default").
  const std::map<std::string, std::string>& origins() const { return origins_; }
  // "file:line" or "command line" for a dotted key; empty when unknown.
  std::string origin(const std::string& key) const;

  bool has(const std::string& key) const;
  // The node at a dotted key; a ConfigError naming the key if it is missing.
  YAML::Node node(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // accepts int values
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;

  // Applies one `key.sub=value` override with the type rules above.
  void apply_override(const std::string& assignment);
  // The resolved config as YAML text (printed at start, saved beside the outputs).
  std::string dump() const;

 private:
  YAML::Node root_;
  std::map<std::string, std::string> origins_;
};

// Loads `path`, composes its defaults recursively and applies `overrides` ("key.sub=value").
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Loads `path` onto `base` (a schema's defaults, see schema.h): the file and its defaults are
// composed as above except that any file may set keys `base` has (the base defines them); a key
// `base` lacks is an error naming file:line, unless its whole top-level section is unknown and
// `allow_other_sections`. Then `overrides` apply as in load_config.
Config load_config_onto(const Config& base, const std::string& path, const std::vector<std::string>& overrides,
                        bool allow_other_sections = false);

}  // namespace lowbit::recipes
