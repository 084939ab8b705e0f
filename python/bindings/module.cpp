// lowbit._C: the pybind11 module. It carries build information (and, as features land,
// configs and enums); compute never goes through it: loading this module loads liblowbit,
// whose static initializers register the lowbit:: ops with the dispatcher.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <lowbit/build_info.h>

namespace py = pybind11;

namespace lowbit::python {
void bind_autoquant(py::module_& m);
void bind_diagnostics(py::module_& m);
void bind_float8(py::module_& m);
void bind_inference(py::module_& m);
void bind_nn(py::module_& m);
void bind_qat(py::module_& m);
void bind_sparse(py::module_& m);
}  // namespace lowbit::python

PYBIND11_MODULE(_C, m) {
  m.doc() = "lowbit C++ core (ops are reached as torch.ops.lowbit.*)";
  m.def("version", &lowbit::version, "The lowbit library version.");
  m.def("build_info", &lowbit::build_info,
        "Build facts: version, cuda (ON/OFF), cuda_archs, torch_version, torch_cuda_version.");
  lowbit::python::bind_float8(m);
  lowbit::python::bind_nn(m);
  lowbit::python::bind_inference(m);
  lowbit::python::bind_qat(m);
  lowbit::python::bind_autoquant(m);
  lowbit::python::bind_diagnostics(m);
  lowbit::python::bind_sparse(m);
}
