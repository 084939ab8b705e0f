// Python binding of quantize_'s configs and the shorthand parser: they exist once, in C++.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/inference/config.h>
#include <lowbit/inference/quantized_weight.h>
#include <lowbit/inference/serialization.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {
namespace {

using inference::QuantizeConfig;
using inference::QuantKind;


// torch.float8_e4m3fn / "float8_e4m3fn" / "e4m3" (and the e5m2 spellings) -> ScalarType.
at::ScalarType float8_dtype_from_py(const py::handle& dtype) {
  std::string s = py::str(dtype);
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  if (s == "float8_e4m3fn" || s == "e4m3" || s == "e4m3fn") return at::kFloat8_e4m3fn;
  if (s == "float8_e5m2" || s == "e5m2") return at::kFloat8_e5m2;
  throw py::value_error("Float8WeightOnlyConfig: dtype must be torch.float8_e4m3fn or torch.float8_e5m2, got " + s);
}

at::ScalarType weight_dtype_from_py(const py::handle& dtype) {
  std::string s = py::str(dtype);
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  if (s == "float32" || s == "float") return at::kFloat;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16" || s == "half") return at::kHalf;
  return at::kByte;  // unsupported; unsupported_reason says so
}

const char* kind_name(QuantKind k) {
  switch (k) {
    case QuantKind::Int4WeightOnly: return "Int4WeightOnlyConfig";
    case QuantKind::Int8WeightOnly: return "Int8WeightOnlyConfig";
    case QuantKind::Int8DynamicInt8: return "Int8DynamicActivationInt8WeightConfig";
    case QuantKind::Int8DynamicInt4: return "Int8DynamicActivationInt4WeightConfig";
    case QuantKind::Float8WeightOnly: return "Float8WeightOnlyConfig";
    case QuantKind::Float8DynamicFloat8: return "Float8DynamicActivationFloat8WeightConfig";
    case QuantKind::FpxWeightOnly: return "FPXWeightOnlyConfig";
    case QuantKind::UIntxWeightOnly: return "UIntXWeightOnlyConfig";
  }
  return "?";
}

}  // namespace

void bind_inference(py::module_& m) {
  py::class_<QuantizeConfig>(m, "QuantizeConfig",
                             "A quantize_ config (made by Int4WeightOnlyConfig(...) etc. or parse_quantize_config).")
      .def_property_readonly("kind", [](const QuantizeConfig& c) { return std::string(kind_name(c.kind)); })
      .def_property_readonly("name", &QuantizeConfig::name, "The canonical shorthand, e.g. 'int4wo-128'.")
      .def_readonly("group_size", &QuantizeConfig::group_size)
      .def_readonly("granularity", &QuantizeConfig::granularity)
      .def_readonly("ebits", &QuantizeConfig::ebits)
      .def_readonly("mbits", &QuantizeConfig::mbits)
      .def_readonly("bits", &QuantizeConfig::bits)
      .def_property_readonly("dtype",
                             [](const QuantizeConfig& c) {
                               return py::module_::import("torch").attr(
                                   c.float8_dtype == at::kFloat8_e5m2 ? "float8_e5m2" : "float8_e4m3fn");
                             })
      .def("__repr__", &QuantizeConfig::to_string)
      .def("__eq__", [](const QuantizeConfig& a, const QuantizeConfig& b) { return a == b; })
      .def("__hash__", [](const QuantizeConfig& c) { return py::hash(py::str(c.name())); })
      .def(py::pickle([](const QuantizeConfig& c) { return c.name(); },
                      [](const std::string& name) { return inference::parse_quantize_config(name); }));

  m.def("Int4WeightOnlyConfig", [](int64_t g) { return as_value_error([&] { return inference::Int4WeightOnlyConfig(g); }); },
        py::arg("group_size") = 128, "int4 weight-only (tinygemm), group-wise asymmetric with float zero points.");
  m.def("Int8WeightOnlyConfig", &inference::Int8WeightOnlyConfig, "int8 weight-only, per-channel symmetric.");
  m.def("Int8DynamicActivationInt8WeightConfig", &inference::Int8DynamicActivationInt8WeightConfig,
        "per-token int8 activations x per-channel int8 weights, int32 accumulation.");
  m.def("Int8DynamicActivationInt4WeightConfig",
        [](int64_t g) { return as_value_error([&] { return inference::Int8DynamicActivationInt4WeightConfig(g); }); },
        py::arg("group_size") = 32, "per-token int8 activations x group-wise symmetric int4 weights.");
  m.def("Float8WeightOnlyConfig",
        [](const py::object& dtype) {
          const at::ScalarType t = float8_dtype_from_py(dtype);
          return as_value_error([&] { return inference::Float8WeightOnlyConfig(t); });
        },
        py::arg("dtype") = py::str("float8_e4m3fn"), "float8 weights (row-wise scales), high-precision activations.");
  m.def("Float8DynamicActivationFloat8WeightConfig",
        [](const std::string& g) {
          return as_value_error([&] { return inference::Float8DynamicActivationFloat8WeightConfig(g); });
        },
        py::arg("granularity") = "tensor", "e4m3 activations and weights, 'tensor' or 'row' scales, scaled_mm.");
  m.def("FPXWeightOnlyConfig",
        [](int64_t e, int64_t mb) { return as_value_error([&] { return inference::FPXWeightOnlyConfig(e, mb); }); },
        py::arg("ebits"), py::arg("mbits"), "fpX_e{ebits}m{mbits} weights (1 + ebits + mbits <= 7), row scales.");
  m.def("UIntXWeightOnlyConfig",
        [](int64_t b, int64_t g) { return as_value_error([&] { return inference::UIntXWeightOnlyConfig(b, g); }); },
        py::arg("bits"), py::arg("group_size") = 64, "uint{bits} weights (1..7), group-wise asymmetric, bit-packed.");
  m.def("parse_quantize_config",
        [](const std::string& s) { return as_value_error([&] { return inference::parse_quantize_config(s); }); },
        py::arg("shorthand"), "The config a shorthand names; ValueError listing the valid names otherwise.");
  m.def("quantize_shorthands", &inference::quantize_shorthands, "Every valid shorthand.");
  m.def("quantize_unsupported_reason",
        [](const QuantizeConfig& c, int64_t n, int64_t k, const py::object& dtype) {
          return inference::unsupported_reason(c, n, k, weight_dtype_from_py(dtype));
        },
        py::arg("config"), py::arg("out_features"), py::arg("in_features"), py::arg("dtype"),
        "Why config cannot quantize an (out_features, in_features) weight of dtype, or None.");

  // File-level hooks of the C++ reader / writer (no tensors cross pybind11), for the cross-face tests.
  m.def("_cpp_read_quantized_formats",
        [](const std::string& path) {
          return as_value_error([&] {
            std::map<std::string, std::string> formats;
            const inference::QuantizedFile file = inference::read_quantized_file(path);
            for (const auto& [name, w] : file.weights) formats[name] = w.config.name();
            for (const auto& [name, t] : file.tensors) formats[name] = "plain";
            return formats;
          });
        },
        py::arg("path"), "Reads a save_quantized file with the C++ reader: {name: format or 'plain'}.");
  m.def("_cpp_rewrite_quantized",
        [](const std::string& src, const std::string& dst) {
          as_value_error([&] { inference::write_quantized_file(dst, inference::read_quantized_file(src)); });
        },
        py::arg("src"), py::arg("dst"), "Reads src with the C++ reader and writes it to dst with the C++ writer.");
}

}  // namespace lowbit::python
