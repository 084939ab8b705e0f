// Diagnostics: which kernel path lowbit's ops took (lowbit::core::kernel_path.h). Reading a few
// C++ counters is not compute, so it may be a pybind11 function.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/core/kernel_path.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {

void bind_diagnostics(py::module_& m) {
  m.def("scaled_mm_last_path", &core::scaled_mm_last_path,
        "Path of the most recent scaled_mm call: cublaslt_outer_vector, cublaslt_tensorwise, "
        "unit_scale_fallback, emulated, empty, or none.");
  m.def(
      "last_kernel_path", [](const std::string& op) { return as_value_error([&] { return core::last_kernel_path(op); }); },
      py::arg("op"), "Path of the most recent call of an op family (scaled_mm, weight_only_linear, int8_dynamic_linear).");
  m.def("kernel_path_counts", &core::kernel_path_counts, "Calls per 'op/path' since start or the last reset.");
  m.def("reset_kernel_path_counts", &core::reset_kernel_path_counts, "Zeroes the kernel path counts.");
}

}  // namespace lowbit::python
