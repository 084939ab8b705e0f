// Python binding of lowbit::nn::ConvertSummary (what a convert function changed and skipped) and of
// quantize_'s layer-selection rule: both faces report conversions and select layers the same way.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/inference/quantize.h>
#include <lowbit/nn/convert.h>

namespace py = pybind11;

namespace lowbit::python {

void bind_nn(py::module_& m) {
  py::class_<nn::ConvertSummary>(m, "ConvertSummary",
                                 "What a convert function changed (converted: qualified names with the new method) "
                                 "and what it left alone (skipped: (name, reason) pairs).")
      .def(py::init([](std::vector<std::string> converted, std::vector<std::pair<std::string, std::string>> skipped) {
             nn::ConvertSummary s;
             s.converted = std::move(converted);
             s.skipped = std::move(skipped);
             return s;
           }),
           py::arg("converted") = std::vector<std::string>{},
           py::arg("skipped") = std::vector<std::pair<std::string, std::string>>{})
      .def_readonly("converted", &nn::ConvertSummary::converted)
      .def_readonly("skipped", &nn::ConvertSummary::skipped)
      .def("__str__", &nn::ConvertSummary::to_string)
      .def("__repr__",
           [](const nn::ConvertSummary& s) {
             return "ConvertSummary(" + std::to_string(s.converted.size()) + " converted, " +
                    std::to_string(s.skipped.size()) + " skipped)";
           })
      .def(py::pickle([](const nn::ConvertSummary& s) { return py::make_tuple(s.converted, s.skipped); },
                      [](const py::tuple& t) {
                        nn::ConvertSummary s;
                        s.converted = t[0].cast<std::vector<std::string>>();
                        s.skipped = t[1].cast<std::vector<std::pair<std::string, std::string>>>();
                        return s;
                      }));
  m.def("selection_skip_reason", &inference::selection_skip_reason, py::arg("name"), py::arg("method"),
        py::arg("quantized"), py::arg("filter_accepts"), py::arg("modules_to_not_convert"),
        "quantize_'s selection rule (the C++ one): why a layer is left alone, or None.");
}

}  // namespace lowbit::python
