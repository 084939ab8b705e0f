// Python binding of the quantize_ configs: one class (QuantizeConfig) and one constructor per
// registered format family (Int4WeightOnlyConfig(group_size=128), ...), generated from the format
// table (csrc/quant), so a new format appears here without touching this file.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/quant/config.h>
#include <lowbit/quant/format.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {
namespace {

using quant::FormatFamily;
using quant::QuantizeConfig;
using quant::QuantParam;

// torch dtype names of the dtypes configs take or report.
const std::vector<std::pair<const char*, at::ScalarType>>& dtype_names() {
  static const std::vector<std::pair<const char*, at::ScalarType>> names = {
      {"float8_e4m3fn", at::kFloat8_e4m3fn}, {"float8_e5m2", at::kFloat8_e5m2}, {"float32", at::kFloat},
      {"bfloat16", at::kBFloat16},           {"float16", at::kHalf},            {"float", at::kFloat},
      {"half", at::kHalf},                   {"e4m3", at::kFloat8_e4m3fn},      {"e4m3fn", at::kFloat8_e4m3fn},
      {"e5m2", at::kFloat8_e5m2}};
  return names;
}

// torch.float8_e4m3fn / "float8_e4m3fn" / "torch.float8_e4m3fn" / "e4m3" -> ScalarType; nullopt otherwise.
std::optional<at::ScalarType> dtype_from_py(const py::handle& value) {
  std::string s = py::str(value);
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  for (const auto& [name, t] : dtype_names()) {
    if (s == name) return t;
  }
  return std::nullopt;
}

py::object dtype_to_py(at::ScalarType t) {
  for (const auto& [name, d] : dtype_names()) {
    if (d == t) return py::module_::import("torch").attr(name);
  }
  return py::str(c10::toString(t));
}

py::object param_to_py(const QuantParam& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return py::int_(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return py::str(*s);
  return dtype_to_py(std::get<at::ScalarType>(v));
}

// A Python value for parameter `name` of `kind`, typed like the parameter's default (or by the
// value itself when the parameter is required).
QuantParam param_from_py(const FormatFamily& family, const std::string& name, const py::handle& value) {
  std::optional<QuantParam> like;
  for (const auto& p : family.params) {
    if (p.name == name) like = p.default_value;
  }
  const bool wants_dtype = like && std::holds_alternative<at::ScalarType>(*like);
  if (wants_dtype || py::hasattr(value, "is_floating_point")) {  // a torch.dtype
    if (auto t = dtype_from_py(value)) return *t;
    throw py::value_error(family.kind + ": " + name + " must be a torch dtype such as torch.float8_e4m3fn, got " +
                          std::string(py::repr(value)));
  }
  if (py::isinstance<py::bool_>(value)) {
    throw py::value_error(family.kind + ": " + name + " must be an integer or a string, got a bool");
  }
  if (py::isinstance<py::int_>(value)) return value.cast<int64_t>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  throw py::value_error(family.kind + ": " + name + " must be an integer or a string, got " +
                        std::string(py::repr(value)));
}

QuantizeConfig construct(const FormatFamily& family, const py::args& args, const py::kwargs& kwargs) {
  if (args.size() > family.params.size()) {
    throw py::value_error(family.kind + " takes at most " + std::to_string(family.params.size()) +
                          " positional arguments, got " + std::to_string(args.size()));
  }
  quant::QuantParams params;
  for (size_t i = 0; i < args.size(); ++i) {
    params[family.params[i].name] = param_from_py(family, family.params[i].name, args[i]);
  }
  for (const auto& item : kwargs) {
    const std::string key = py::cast<std::string>(item.first);
    if (params.count(key)) throw py::value_error(family.kind + ": got multiple values for '" + key + "'");
    params[key] = param_from_py(family, key, item.second);
  }
  return as_value_error([&] { return quant::make_quantize_config(family.kind, params); });
}

std::string signature(const FormatFamily& family) {
  std::string s = family.kind + "(";
  for (size_t i = 0; i < family.params.size(); ++i) {
    const auto& p = family.params[i];
    s += (i ? ", " : "") + p.name;
    if (p.default_value) s += "=" + std::string(py::repr(param_to_py(*p.default_value)));
  }
  return s + ")";
}

at::ScalarType weight_dtype_from_py(const py::handle& dtype) {
  const auto t = dtype_from_py(dtype);
  return t && (*t == at::kFloat || *t == at::kBFloat16 || *t == at::kHalf) ? *t : at::kByte;  // kByte: unsupported
}

}  // namespace

void bind_inference(py::module_& m) {
  py::class_<QuantizeConfig>(m, "QuantizeConfig",
                             "A quantize_ config: one quantized weight format with its parameters (made by "
                             "Int4WeightOnlyConfig(...) etc. or parse_quantize_config). Parameters read as "
                             "attributes (config.group_size).")
      .def_property_readonly("kind", &QuantizeConfig::kind, "The config class, e.g. 'Int4WeightOnlyConfig'.")
      .def_property_readonly("name", &QuantizeConfig::name, "The canonical shorthand, e.g. 'int4wo-128'.")
      .def_property_readonly(
          "params",
          [](const QuantizeConfig& c) {
            py::dict d;
            for (const auto& [name, value] : c.params()) d[py::str(name)] = param_to_py(value);
            return d;
          },
          "The parameters by name.")
      .def_property_readonly(
          "part_names", [](const QuantizeConfig& c) { return c.format().part_names(); },
          "Names of the packed parts, in the order the format's op takes them.")
      .def_property_readonly(
          "linear_op", [](const QuantizeConfig& c) { return c.format().linear_op(); },
          "The format's linear op in torch.ops.lowbit: op(input, *parts, *linear_op_args, bias).")
      .def_property_readonly(
          "linear_op_args",
          [](const QuantizeConfig& c) {
            py::list out;
            for (const auto& v : c.format().linear_op_args()) out.append(param_to_py(v));
            return py::tuple(out);
          },
          "The constant arguments of the format's linear op (after the parts).")
      .def_property_readonly(
          "quantizes_activations", [](const QuantizeConfig& c) { return c.format().quantizes_activations(); },
          "True when activations are quantized on the fly.")
      .def("__getattr__",
           [](const QuantizeConfig& c, const std::string& name) -> py::object {
             for (const auto& [n, value] : c.params()) {
               if (n == name) return param_to_py(value);
             }
             throw py::attribute_error(c.kind() + " has no attribute '" + name + "'");
           })
      .def("__repr__", &QuantizeConfig::to_string)
      .def("__eq__", [](const QuantizeConfig& a, const py::object& b) {
        return py::isinstance<QuantizeConfig>(b) && a == b.cast<const QuantizeConfig&>();
      })
      .def("__hash__", [](const QuantizeConfig& c) { return py::hash(py::str(c.name())); })
      .def(py::pickle([](const QuantizeConfig& c) { return c.name(); },
                      [](const std::string& name) { return quant::parse_quantize_config(name); }));

  py::list kinds;
  for (const FormatFamily* family : quant::format_families()) {
    m.def(family->kind.c_str(),
          [family](const py::args& args, const py::kwargs& kwargs) { return construct(*family, args, kwargs); },
          (signature(*family) + ": " + family->doc).c_str());
    kinds.append(family->kind);
  }
  m.attr("quantize_config_kinds") = py::tuple(kinds);

  m.def("parse_quantize_config",
        [](const std::string& s) { return as_value_error([&] { return quant::parse_quantize_config(s); }); },
        py::arg("shorthand"), "The config a shorthand names; ValueError listing the valid names otherwise.");
  m.def("quantize_shorthands", &quant::quantize_shorthands, "Every valid shorthand.");
  m.def("quantize_unsupported_reason",
        [](const QuantizeConfig& c, int64_t n, int64_t k, const py::object& dtype) {
          return quant::unsupported_reason(c, n, k, weight_dtype_from_py(dtype));
        },
        py::arg("config"), py::arg("out_features"), py::arg("in_features"), py::arg("dtype"),
        "Why config cannot quantize an (out_features, in_features) weight of dtype, or None.");
}

}  // namespace lowbit::python
