// Python binding of Float8LinearConfig: the config exists once, in C++.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/core/device.h>
#include <lowbit/float8/config.h>
#include <lowbit/float8/convert.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {
namespace {

using float8::Float8LinearConfig;


// Sets config fields from keyword arguments; an unknown name is a ValueError listing the fields.
void apply_overrides(Float8LinearConfig& c, const py::kwargs& overrides) {
  for (const auto& item : overrides) {
    const std::string key = py::cast<std::string>(item.first);
    const py::handle value = item.second;
    if (key == "recipe") c.recipe = float8::parse_float8_recipe(py::cast<std::string>(value));
    else if (key == "emulate") c.emulate = py::cast<bool>(value);
    else if (key == "pad_inner_dim") c.pad_inner_dim = py::cast<bool>(value);
    else if (key == "force_recompute_fp8_weight_in_bwd") c.force_recompute_fp8_weight_in_bwd = py::cast<bool>(value);
    else if (key == "enable_fsdp_float8_all_gather") c.enable_fsdp_float8_all_gather = py::cast<bool>(value);
    else if (key == "round_scales_to_power_of_2") c.round_scales_to_power_of_2 = py::cast<bool>(value);
    else
      throw py::value_error("Float8LinearConfig: unknown option '" + key + "'; allowed: recipe, emulate, "
                            "pad_inner_dim, force_recompute_fp8_weight_in_bwd, enable_fsdp_float8_all_gather, "
                            "round_scales_to_power_of_2");
  }
  c.validate();
}

}  // namespace

void bind_float8(py::module_& m) {
  py::class_<Float8LinearConfig>(m, "Float8LinearConfig",
                                 "How convert_to_float8_training makes a linear train in float8 (recipe, emulate, "
                                 "pad_inner_dim, force_recompute_fp8_weight_in_bwd, enable_fsdp_float8_all_gather, "
                                 "round_scales_to_power_of_2).")
      .def(py::init([](const py::kwargs& kwargs) {
             return as_value_error([&] {
               Float8LinearConfig c;
               apply_overrides(c, kwargs);
               return c;
             });
           }),
           "Float8LinearConfig(**options): the tensorwise recipe's defaults with the given options.")
      .def_static(
          "from_recipe_name",
          [](const std::string& name, const py::kwargs& overrides) {
            return as_value_error([&] {
              Float8LinearConfig c = Float8LinearConfig::from_recipe_name(name);
              apply_overrides(c, overrides);
              return c;
            });
          },
          py::arg("name"), "A recipe's config ('tensorwise', 'rowwise', 'rowwise_with_gw_hp') with overrides.")
      .def_property(
          "recipe", [](const Float8LinearConfig& c) { return float8::float8_recipe_name(c.recipe); },
          [](Float8LinearConfig& c, const std::string& name) {
            c.recipe = as_value_error([&] { return float8::parse_float8_recipe(name); });
          })
      .def_readwrite("emulate", &Float8LinearConfig::emulate)
      .def_readwrite("pad_inner_dim", &Float8LinearConfig::pad_inner_dim)
      .def_readwrite("force_recompute_fp8_weight_in_bwd", &Float8LinearConfig::force_recompute_fp8_weight_in_bwd)
      .def_readwrite("enable_fsdp_float8_all_gather", &Float8LinearConfig::enable_fsdp_float8_all_gather)
      .def_readwrite("round_scales_to_power_of_2", &Float8LinearConfig::round_scales_to_power_of_2)
      .def("validate", [](const Float8LinearConfig& c) { as_value_error([&] { c.validate(); }); })
      .def("__repr__", &Float8LinearConfig::to_string)
      .def(py::pickle(
          [](const Float8LinearConfig& c) {
            return py::make_tuple(float8::float8_recipe_name(c.recipe), c.emulate, c.pad_inner_dim,
                                  c.force_recompute_fp8_weight_in_bwd, c.enable_fsdp_float8_all_gather,
                                  c.round_scales_to_power_of_2);
          },
          [](const py::tuple& t) {
            Float8LinearConfig c;
            c.recipe = float8::parse_float8_recipe(t[0].cast<std::string>());
            c.emulate = t[1].cast<bool>();
            c.pad_inner_dim = t[2].cast<bool>();
            c.force_recompute_fp8_weight_in_bwd = t[3].cast<bool>();
            c.enable_fsdp_float8_all_gather = t[4].cast<bool>();
            c.round_scales_to_power_of_2 = t[5].cast<bool>();
            return c;
          }));
  m.def(
      "float8_skip_reason",
      [](const std::string& name, const std::string& method, bool filter_accepts, int64_t in, int64_t out,
         const std::string& device, const Float8LinearConfig& config) {
        return as_value_error(
            [&] { return float8::float8_skip_reason(name, method, filter_accepts, in, out, c10::Device(device), config); });
      },
      py::arg("name"), py::arg("method"), py::arg("filter_accepts"), py::arg("in_features"), py::arg("out_features"),
      py::arg("device"), py::arg("config"),
      "convert_to_float8_training's rule (the C++ one): why a linear stays in high precision, or None; a "
      "ValueError for a device without an fp8 GEMM and emulate=False.");
  m.def("has_fp8_gemm", [](const std::string& device) { return core::has_fp8_gemm(c10::Device(device)); },
        py::arg("device"), "Whether `device` runs fp8 GEMMs on tensor cores (CUDA, compute capability 8.9+).");
}

}  // namespace lowbit::python
