// Python binding of the QAT configs and prepare's skip rule: they exist once, in C++ (qat/).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/qat/qat.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {
namespace {

using qat::FakeQuantizeConfig;
using qat::QATConfig;

// torch.int8 / torch.uint4 / "int4" -> "int4" (anything else is left for validate() to reject by name).
std::string qdtype_from_py(const py::handle& dtype) {
  std::string s = py::str(dtype);
  return s.rfind("torch.", 0) == 0 ? s.substr(6) : s;
}

// The op-argument tuple of one spec: (qdtype, group_size, symmetric, zero_point_domain).
py::tuple spec_args(const core::FakeQuantSpec& s) {
  return py::make_tuple(s.qdtype, s.group_size, s.symmetric, s.zero_point_domain);
}


}  // namespace

void bind_qat(py::module_& m) {
  py::class_<FakeQuantizeConfig>(m, "FakeQuantizeConfig",
                                 "Fake quantization of one tensor: dtype (torch.int8, 'int4', 'uint4', ...), "
                                 "granularity ('per_token' / 'per_channel': one scale per row of the last dim; "
                                 "'per_group': one per group_size elements of it), symmetric, dynamic (qparams from "
                                 "each forward's tensor; the only mode), zero_point_domain ('int'; 'float' is "
                                 "tinygemm's, asymmetric only).")
      .def(py::init([](const py::object& dtype, const std::string& granularity, std::optional<int64_t> group_size,
                       bool symmetric, bool dynamic, const std::string& zero_point_domain) {
             FakeQuantizeConfig c{qdtype_from_py(dtype), granularity, group_size.value_or(0), symmetric, dynamic,
                                  zero_point_domain};
             as_value_error([&] { c.validate(); });
             return c;
           }),
           py::arg("dtype"), py::arg("granularity") = "per_token", py::arg("group_size") = py::none(),
           py::arg("symmetric") = true, py::arg("dynamic") = true, py::arg("zero_point_domain") = "int")
      .def_readonly("dtype", &FakeQuantizeConfig::dtype)
      .def_readonly("granularity", &FakeQuantizeConfig::granularity)
      .def_property_readonly("group_size",
                             [](const FakeQuantizeConfig& c) -> std::optional<int64_t> {
                               if (c.granularity == "per_group") return c.group_size;
                               return std::nullopt;
                             })
      .def_readonly("symmetric", &FakeQuantizeConfig::symmetric)
      .def_readonly("dynamic", &FakeQuantizeConfig::dynamic)
      .def_readonly("zero_point_domain", &FakeQuantizeConfig::zero_point_domain)
      .def_property_readonly(
          "op_args", [](const FakeQuantizeConfig& c) { return spec_args(c.spec()); },
          "(qdtype, group_size (0: the whole last dim), symmetric, zero_point_domain) as the ops take them.")
      .def("__repr__", &FakeQuantizeConfig::to_string)
      .def("__eq__", [](const FakeQuantizeConfig& a, const py::object& b) {
        return py::isinstance<FakeQuantizeConfig>(b) && a.to_string() == b.cast<const FakeQuantizeConfig&>().to_string();
      })
      .def("__hash__", [](const FakeQuantizeConfig& c) { return py::hash(py::str(c.to_string())); })
      .def(py::pickle(
          [](const FakeQuantizeConfig& c) {
            return py::make_tuple(c.dtype, c.granularity, c.group_size, c.symmetric, c.dynamic, c.zero_point_domain);
          },
          [](const py::tuple& t) {
            FakeQuantizeConfig c{t[0].cast<std::string>(), t[1].cast<std::string>(), t[2].cast<int64_t>(),
                                 t[3].cast<bool>(),        t[4].cast<bool>(),        t[5].cast<std::string>()};
            c.validate();
            return c;
          }));

  py::class_<QATConfig>(m, "QATConfig",
                        "Activation (optional) and weight fake quantization, and the quantize_ config convert "
                        "applies (None for a custom pair, which convert refuses).")
      .def(py::init([](std::optional<FakeQuantizeConfig> activation, const FakeQuantizeConfig& weight,
                       std::optional<quant::QuantizeConfig> convert_to) {
             QATConfig c;
             c.activation = std::move(activation);
             c.weight = weight;
             if (convert_to) c.convert_to = *convert_to;
             as_value_error([&] { c.validate(); });
             return c;
           }),
           py::arg("activation"), py::arg("weight"), py::arg("convert_to") = py::none())
      .def_readonly("activation", &QATConfig::activation)
      .def_readonly("weight", &QATConfig::weight)
      .def_property_readonly("convert_to",
                             [](const QATConfig& c) -> std::optional<quant::QuantizeConfig> {
                               if (c.convert_to.defined()) return c.convert_to;
                               return std::nullopt;
                             })
      .def_property_readonly("method_name", &QATConfig::method_name)
      .def_property_readonly(
          "op_args",
          [](const QATConfig& c) -> py::tuple {
            // lowbit::fake_quantized_linear's arguments after (input, weight, bias).
            const auto w = c.weight.spec();
            if (!c.activation) return py::make_tuple(w.qdtype, w.group_size, w.symmetric, w.zero_point_domain);
            const auto a = c.activation->spec();
            return py::make_tuple(w.qdtype, w.group_size, w.symmetric, w.zero_point_domain, a.qdtype, a.group_size,
                                  a.symmetric, a.zero_point_domain);
          },
          "lowbit::fake_quantized_linear's arguments after (input, weight, bias).")
      .def("__repr__", &QATConfig::to_string)
      .def(py::pickle(
          [](const QATConfig& c) {
            return py::make_tuple(c.activation, c.weight,
                                  c.convert_to.defined() ? py::object(py::str(c.convert_to.name())) : py::none());
          },
          [](const py::tuple& t) {
            QATConfig c;
            c.activation = t[0].cast<std::optional<FakeQuantizeConfig>>();
            c.weight = t[1].cast<FakeQuantizeConfig>();
            if (!t[2].is_none()) c.convert_to = quant::parse_quantize_config(t[2].cast<std::string>());
            return c;
          }));

  m.def("Int8DynActInt4WeightQATConfig",
        [](int64_t g) { return as_value_error([&] { return qat::Int8DynActInt4WeightQATConfig(g); }); },
        py::arg("group_size") = 32,
        "Per-token asymmetric int8 activations, group-wise symmetric int4 weights; converts to "
        "Int8DynamicActivationInt4WeightConfig(group_size).");
  m.def("Int4WeightOnlyQATConfig",
        [](int64_t g) { return as_value_error([&] { return qat::Int4WeightOnlyQATConfig(g); }); },
        py::arg("group_size") = 128,
        "Group-wise asymmetric uint4 weights with float zero points (tinygemm's); converts to "
        "Int4WeightOnlyConfig(group_size).");
  m.def(
      "qat_prepare_skip_reason",
      [](const std::string& name, const std::string& method, bool quantized, bool filter_accepts,
         const QATConfig& config, int64_t n, int64_t k, const std::string& dtype) {
        at::ScalarType t = at::kByte;  // unsupported; the rule says so
        if (dtype == "float32") t = at::kFloat;
        if (dtype == "bfloat16") t = at::kBFloat16;
        if (dtype == "float16") t = at::kHalf;
        return qat::prepare_skip_reason(name, method, quantized, filter_accepts, config, n, k, t);
      },
      py::arg("name"), py::arg("method"), py::arg("quantized"), py::arg("filter_accepts"), py::arg("config"),
      py::arg("out_features"), py::arg("in_features"), py::arg("dtype"),
      "qat.prepare's rule (the C++ one): why a layer is not prepared, or None.");
}

}  // namespace lowbit::python
