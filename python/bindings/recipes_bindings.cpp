// Python binding of the recipe config loader: both faces read configs with the same C++ code.
// Built only with the recipes (LOWBIT_WITH_RECIPES, set on _C when lowbit_recipes exists).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#if LOWBIT_WITH_RECIPES
#include <lowbit/recipes/config.h>
#endif

namespace py = pybind11;

namespace lowbit::python {

#if LOWBIT_WITH_RECIPES
namespace {

using recipes::ValueKind;

// A YAML node as Python values of its inferred kind (the type rules of the C++ getters).
py::object to_python(const YAML::Node& node) {
  switch (recipes::value_kind(node)) {
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

// Config mistakes are ValueErrors in Python.
recipes::Config load(const std::string& path, const std::vector<std::string>& overrides) {
  try {
    return recipes::load_config(path, overrides);
  } catch (const recipes::ConfigError& e) {
    throw py::value_error(e.what());
  }
}

}  // namespace

void bind_recipes(py::module_& m) {
  m.def(
      "recipes_load_config",
      [](const std::string& path, const std::vector<std::string>& overrides) {
        return to_python(load(path, overrides).root());
      },
      py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
      "Loads a recipe config (defaults composed, key.sub=value overrides type-checked) as a dict; "
      "errors are ValueErrors naming the key and file:line.");
  m.def(
      "recipes_dump_config",
      [](const std::string& path, const std::vector<std::string>& overrides) { return load(path, overrides).dump(); },
      py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
      "The resolved config of recipes_load_config as YAML text.");
  m.attr("recipes_available") = true;
}
#else
// Built without yaml-cpp: the Python face reports that the recipes are unavailable.
void bind_recipes(py::module_& m) { m.attr("recipes_available") = false; }
#endif

}  // namespace lowbit::python
