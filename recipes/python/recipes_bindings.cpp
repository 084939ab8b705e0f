// lowbit_recipes._C: the recipes' config loader, schemas, command line and help, bound for the
// Python recipes, so both faces accept and reject exactly the same configs (recipes/recipe.h).
// Config mistakes are ValueErrors. Nothing here computes; the recipes call lowbit for that.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/recipes/config.h>
#include <lowbit/recipes/llama.h>
#include <lowbit/recipes/recipe.h>

#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>

namespace py = pybind11;
using namespace lowbit::recipes;

namespace {

// A YAML node as Python values of its inferred kind (the type rules of the C++ getters).
py::object to_python(const YAML::Node& node) {
  switch (value_kind(node)) {
    case ValueKind::Null: return py::none();
    case ValueKind::Bool: return py::bool_(node.as<bool>());
    case ValueKind::Int: return py::int_(node.as<long long>());
    case ValueKind::Float: return py::float_(node.as<double>());
    case ValueKind::String: return py::str(node.Scalar());
    case ValueKind::List: {
      py::list out;
      for (const auto& item : node) out.append(to_python(item));
      return out;
    }
    case ValueKind::Map: {
      py::dict out;
      for (const auto& item : node) out[py::str(item.first.Scalar())] = to_python(item.second);
      return out;
    }
  }
  return py::none();
}

// Python values -> a YAML node of the same kind (a dict a Python caller built or edited).
YAML::Node to_yaml(const py::handle& obj) {
  if (obj.is_none()) return YAML::Node(YAML::NodeType::Null);
  if (py::isinstance<py::bool_>(obj)) return YAML::Node(obj.cast<bool>() ? "true" : "false");
  if (py::isinstance<py::int_>(obj)) return YAML::Node(std::to_string(obj.cast<long long>()));
  if (py::isinstance<py::float_>(obj)) {
    const double v = obj.cast<double>();
    if (std::isnan(v)) return YAML::Node(".nan");
    if (std::isinf(v)) return YAML::Node(v > 0 ? ".inf" : "-.inf");
    std::string text = py::repr(obj).cast<std::string>();  // shortest round-trip form
    if (text.find_first_of(".eE") == std::string::npos) text += ".0";
    return YAML::Node(text);
  }
  if (py::isinstance<py::str>(obj)) {
    YAML::Node n(obj.cast<std::string>());
    n.SetTag("!");
    return n;
  }
  if (py::isinstance<py::dict>(obj)) {
    YAML::Node out(YAML::NodeType::Map);
    for (const auto& item : obj.cast<py::dict>()) out[py::str(item.first).cast<std::string>()] = to_yaml(item.second);
    return out;
  }
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const auto& item : obj) out.push_back(to_yaml(item));
    return out;
  }
  throw py::type_error("config values are None, bool, int, float, str, list or dict; got " +
                       py::str(py::type::handle_of(obj)).cast<std::string>());
}

// Runs `f`, turning config mistakes into ValueErrors.
template <typename F>
auto config_call(F&& f) {
  try {
    return f();
  } catch (const ConfigError& e) {
    throw py::value_error(e.what());
  } catch (const c10::Error& e) {
    throw py::value_error(e.what_without_backtrace());
  }
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "lowbit_recipes C++ core: config loader, recipe schemas, command line and help";

  m.def(
      "load_config",
      [](const std::string& path, const std::vector<std::string>& overrides) {
        return config_call([&] { return to_python(load_config(path, overrides).root()); });
      },
      py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
      "Loads any config file (defaults composed, key.sub=value overrides type-checked) as a dict, without a "
      "recipe schema; errors are ValueErrors naming the key and file:line.");
  m.def(
      "dump_config",
      [](const std::string& path, const std::vector<std::string>& overrides) {
        return config_call([&] { return load_config(path, overrides).dump(); });
      },
      py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
      "The resolved config of load_config as YAML text.");

  m.def("recipe_names", &recipe_names, "The recipes with a schema: pretrain, finetune_then_quantize, llama_forward.");
  m.def(
      "load_recipe_config",
      [](const std::string& name, const std::string& path, const std::vector<std::string>& overrides) {
        return config_call([&] {
          const Config c = recipe(name).schema.load(path, overrides);
          return py::make_tuple(to_python(c.root()), c.dump());
        });
      },
      py::arg("recipe"), py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
      "Loads `path` onto the recipe's declared defaults, applies overrides and validates every value: "
      "(config dict, YAML text). Every mistake is one ValueError listing them all.");
  m.def(
      "validate",
      [](const std::string& name, const py::dict& config) {
        config_call([&] {
          recipe(name).schema.validate(Config(to_yaml(config), {}));
          return 0;
        });
      },
      py::arg("recipe"), py::arg("config"), "Checks a config dict against the recipe's schema (ValueError if not).");
  m.def(
      "schema_keys",
      [](const std::string& name) {
        return config_call([&] {
          py::list out;
          for (const auto& k : recipe(name).schema.keys()) {
            py::dict d;
            d["key"] = k.key;
            d["type"] = k.type.name();
            d["default"] = k.default_yaml;
            d["allowed"] = k.allowed.text;
            d["help"] = k.help;
            out.append(d);
          }
          return out;
        });
      },
      py::arg("recipe"), "Every key of the recipe: dicts with key, type, default (YAML text), allowed, help.");
  m.def(
      "prepare",
      [](const std::string& name, const std::vector<std::string>& args, const std::string& prog,
         const std::vector<std::string>& config_dirs) {
        return config_call([&] {
          const Recipe& r = recipe(name);
          const CommandLine cl = parse_command_line(r, args, prog);
          py::dict out;
          if (cl.help) {
            out["help"] = help_text(r, prog, cl, config_dirs);
            return out;
          }
          const std::string path = resolve_config(cl.config, config_dirs);
          const Config c = r.schema.load(path, cl.overrides);
          out["config"] = to_python(c.root());
          out["config_text"] = c.dump();
          out["config_path"] = path;
          out["plan"] = plan_text(r, c, path, cl);
          out["positionals"] = cl.positionals;
          return out;
        });
      },
      py::arg("recipe"), py::arg("args"), py::arg("prog"), py::arg("config_dirs"),
      "A recipe's start, as the C++ mains do it: parses the command line; returns {'help': text} for -h/--help, "
      "else the validated config ({'config', 'config_text', 'config_path', 'plan', 'positionals'}). Every "
      "mistake is a ValueError (usage line included for command-line mistakes).");
  m.def(
      "validate_llama_config",
      [](const py::dict& d) {
        config_call([&] {
          LlamaConfig c;
          c.vocab_size = d["vocab_size"].cast<int64_t>();
          c.dim = d["dim"].cast<int64_t>();
          c.n_layers = d["n_layers"].cast<int64_t>();
          c.n_heads = d["n_heads"].cast<int64_t>();
          c.n_kv_heads = d["n_kv_heads"].cast<int64_t>();
          c.hidden_dim = d["hidden_dim"].cast<int64_t>();
          c.max_seq_len = d["max_seq_len"].cast<int64_t>();
          c.norm_eps = d["norm_eps"].cast<double>();
          c.rope_theta = d["rope_theta"].cast<double>();
          c.validate();
          return 0;
        });
      },
      py::arg("config"), "The C++ LlamaConfig's shape checks on a dict of model.* values (ValueError if not).");
}
