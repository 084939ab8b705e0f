// Error translation shared by the pybind11 bindings.
#pragma once

#include <c10/util/Exception.h>
#include <pybind11/pybind11.h>

namespace lowbit::python {

namespace py = pybind11;

// Config mistakes are ValueErrors in Python (c10::Error would surface as RuntimeError).
template <typename F>
auto as_value_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw py::value_error(e.what_without_backtrace());
  }
}

}  // namespace lowbit::python
