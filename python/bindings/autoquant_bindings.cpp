// Python binding of autoquant's plan: the format exists once, in C++ (lowbit.autoquant builds and
// applies plans in Python; timing runs through the lowbit::autoquant_layer op).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/inference/autoquant.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {

using inference::AutoquantCandidate;
using inference::AutoquantLayer;
using inference::AutoquantPlan;

void bind_autoquant(py::module_& m) {
  py::class_<AutoquantCandidate>(m, "AutoquantCandidate", "One candidate's measurement on one layer.")
      .def_readonly("config", &AutoquantCandidate::config, "A shorthand, or 'none' for the float layer.")
      .def_readonly("ms", &AutoquantCandidate::ms, "Time of the example's calls of this layer, in milliseconds.")
      .def_readonly("sqnr_db", &AutoquantCandidate::sqnr_db, "Output SQNR against the float layer (inf if exact).")
      .def_readonly("skipped", &AutoquantCandidate::skipped, "Why it was not measured; empty if it was.")
      .def("__repr__", [](const AutoquantCandidate& c) {
        return "AutoquantCandidate(" + c.config + ", ms=" + std::to_string(c.ms) + ", sqnr_db=" + std::to_string(c.sqnr_db) +
               (c.skipped.empty() ? "" : ", skipped='" + c.skipped + "'") + ")";
      });
  py::class_<AutoquantLayer>(m, "AutoquantLayer", "One layer of an autoquant plan.")
      .def_readonly("name", &AutoquantLayer::name)
      .def_readonly("out_features", &AutoquantLayer::out_features)
      .def_readonly("in_features", &AutoquantLayer::in_features)
      .def_readonly("dtype", &AutoquantLayer::dtype)
      .def_readonly("tokens", &AutoquantLayer::tokens, "[(rows, calls)] recorded on the example.")
      .def_readonly("chosen", &AutoquantLayer::chosen, "The chosen shorthand, or 'none'.")
      .def_readonly("candidates", &AutoquantLayer::candidates)
      .def("__repr__", [](const AutoquantLayer& l) { return "AutoquantLayer(" + l.name + " -> " + l.chosen + ")"; });
  py::class_<AutoquantPlan>(m, "AutoquantPlan",
                            "What autoquant measured and chose per layer; saves to and loads from JSON.")
      .def_readonly("device", &AutoquantPlan::device)
      .def_readonly("min_sqnr", &AutoquantPlan::min_sqnr)
      .def_readonly("layers", &AutoquantPlan::layers)
      .def_property_readonly(
          "chosen",
          [](const AutoquantPlan& p) {
            py::dict d;
            for (const auto& l : p.layers) d[py::str(l.name)] = l.chosen;
            return d;
          },
          "{layer name: chosen shorthand or 'none'}.")
      .def("to_json", &AutoquantPlan::to_json, "The plan as JSON text.")
      .def("save", [](const AutoquantPlan& p, const std::string& path) { as_value_error([&] { p.save(path); }); },
           py::arg("path"), "Writes the plan as JSON to path.")
      .def_static("from_json",
                  [](const std::string& text) { return as_value_error([&] { return AutoquantPlan::from_json(text); }); },
                  py::arg("text"), "Reads a plan from JSON text (ValueError if it is not one).")
      .def_static("load",
                  [](const std::string& path) { return as_value_error([&] { return AutoquantPlan::load(path); }); },
                  py::arg("path"), "Reads a plan saved by save (ValueError if it is not one).")
      .def("__str__", &AutoquantPlan::to_string)
      .def("__repr__", [](const AutoquantPlan& p) {
        return "AutoquantPlan(" + std::to_string(p.layers.size()) + " layers, device=" + p.device + ")";
      });
  m.def("default_autoquant_candidates", &inference::default_autoquant_candidates,
        "The shorthands autoquant times when candidates is None.");
  m.def(
      "autoquant_plan_from_layers",
      [](const std::string& device, std::optional<double> min_sqnr, const std::vector<std::string>& layer_jsons) {
        return as_value_error([&] {
          AutoquantPlan plan;
          plan.device = device;
          plan.min_sqnr = min_sqnr;
          for (const auto& j : layer_jsons) plan.layers.push_back(inference::autoquant_layer_from_json(j));
          return plan;
        });
      },
      py::arg("device"), py::arg("min_sqnr"), py::arg("layer_jsons"),
      "A plan from lowbit::autoquant_layer results (used by lowbit.autoquant).");
}

}  // namespace lowbit::python
