// What a recipe accepts: every config key with its type, default, allowed values and help,
// declared once in C++ (recipes/keys.cpp) and read by both faces (lowbit_recipes._C binds it).
//
//   Schema s;
//   s.key("optim.lr", Type::Float, "3.0e-3", "peak learning rate", greater_than(0));
//   s.key("optim.name", Type::String, "adamw8bit", "optimizer", one_of({"adamw", "adamw8bit"}));
//   s.rule({"model.dim", "model.n_heads"}, [](const Config& c) { ... return "" or why not; });
//   Config c = s.load("recipes/configs/pretrain_tiny.yaml", {"optim.lr=1e-3"});   // validated
//
// A schema's defaults are the base every config file is merged onto: a file or an override may
// set only declared keys, with the declared type (errors name the key and file:line or "command
// line"); then every value is checked against what it allows and every cross-key rule runs. All
// problems are reported at once, before a recipe does any work.
#pragma once

#include <lowbit/recipes/config.h>

#include <functional>
#include <string>
#include <vector>

namespace lowbit::recipes {

// A key's type: a scalar kind, or a list of one (elements checked one by one).
struct Type {
  ValueKind kind = ValueKind::Null;
  ValueKind element = ValueKind::Null;  // lists only
  static const Type Int, Float, Bool, String;
  static Type list_of(Type element);
  std::string name() const;  // "int", "float", "list of string", ...
};

// What a key allows besides its type: a readable text ("> 0", "adamw, adamw8bit") and a check
// that returns "" when a value is allowed, else why not. For a list, each element is checked.
struct Allowed {
  std::string text;
  std::function<std::string(const YAML::Node&)> check;
};
Allowed anything();
Allowed one_of(std::vector<std::string> choices);
Allowed greater_than(double bound);
Allowed at_least(double bound);
Allowed in_range(double lo, double hi);  // lo <= value <= hi
Allowed custom(std::string text, std::function<std::string(const YAML::Node&)> check);

struct KeySpec {
  std::string key;           // dotted: "optim.lr"
  Type type;
  std::string default_yaml;  // the default as YAML text: "3.0e-3", "[0.9, 0.95]", "cpu"
  std::string help;
  Allowed allowed;
};

// A check across keys; returns "" when the config satisfies it, else the message (naming the keys).
struct Rule {
  std::vector<std::string> keys;
  std::function<std::string(const Config&)> check;
};

class Schema {
 public:
  // Declares a key (its section is the part before the first dot). Re-declaring is an error.
  Schema& key(const std::string& key, Type type, const std::string& default_yaml, const std::string& help,
              Allowed allowed = anything());
  Schema& rule(std::vector<std::string> keys, std::function<std::string(const Config&)> check);
  // Keys of undeclared top-level sections are kept unchecked instead of being errors (for tools
  // that read only part of a saved config, e.g. the model section of a training run's config.yaml).
  Schema& allow_other_sections(bool allow = true);
  // Adds every key and rule of `other` (a recipe is composed of sections).
  Schema& include(const Schema& other);

  const std::vector<KeySpec>& keys() const { return keys_; }
  const KeySpec* find(const std::string& key) const;
  // The declared defaults as a config (origin "default" for every key).
  Config defaults() const;
  // Every broken value and rule, one message each; empty when the config is valid.
  std::vector<std::string> problems(const Config& config) const;
  // Throws a ConfigError listing problems() when there are any.
  void validate(const Config& config) const;
  // Loads `path` (defaults: composed) onto defaults(), applies `overrides`, validates.
  Config load(const std::string& path, const std::vector<std::string>& overrides = {}) const;
  // The key table for --help: key, type, value in `values` (the defaults when null), allowed, help.
  // Origins under `origin_root` (a folder) are shown relative to it.
  std::string describe_keys(const Config* values = nullptr, const std::string& origin_root = "") const;

 private:
  std::vector<KeySpec> keys_;
  std::vector<Rule> rules_;
  bool allow_other_sections_ = false;
};

}  // namespace lowbit::recipes
