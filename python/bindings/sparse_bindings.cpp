// Python bindings of the 2:4 training config and its rules (shape rule, measured-faster table):
// they exist once, in C++. Compute goes through torch.ops.lowbit.*, never through here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <c10/core/Device.h>

#include <lowbit/nn/convert.h>
#include <lowbit/sparse/config.h>
#include <lowbit/sparse/convert.h>
#include <lowbit/sparse/speed_table.h>

#include "errors.h"

namespace py = pybind11;

namespace lowbit::python {
namespace {

using sparse::SemiSparseTrainingConfig;

void apply_overrides(SemiSparseTrainingConfig& c, const py::kwargs& overrides) {
  for (const auto& item : overrides) {
    const std::string key = py::cast<std::string>(item.first);
    const py::handle value = item.second;
    if (key == "target") c.target = sparse::parse_semi_sparse_target(py::cast<std::string>(value));
    else if (key == "algorithm") c.algorithm = core::parse_prune_algorithm(py::cast<std::string>(value));
    else if (key == "gradient") c.gradient = core::parse_semi_sparse_gradient(py::cast<std::string>(value));
    else
      throw py::value_error("SemiSparseTrainingConfig: unknown option '" + key + "'; allowed: target, algorithm, gradient");
  }
  c.validate();
}

c10::DeviceType device_type(const std::string& device) { return c10::Device(device).type(); }

}  // namespace

void bind_sparse(py::module_& m) {
  // ConvertSummary is bound once, by nn_bindings.cpp (bind_nn runs first).
  py::class_<SemiSparseTrainingConfig>(m, "SemiSparseTrainingConfig",
                                       "How convert_to_semi_sparse_training makes a linear train with 2:4 sparsity: "
                                       "target ('weight' | 'activation'), algorithm ('largest_abs' | 'largest'), "
                                       "gradient ('ste' | 'masked').")
      .def(py::init([](const py::kwargs& kwargs) {
             return as_value_error([&] {
               SemiSparseTrainingConfig c;
               apply_overrides(c, kwargs);
               return c;
             });
           }),
           "SemiSparseTrainingConfig(**options): weight-sparse, largest_abs, ste, with the given options.")
      .def_property(
          "target", [](const SemiSparseTrainingConfig& c) { return sparse::semi_sparse_target_name(c.target); },
          [](SemiSparseTrainingConfig& c, const std::string& v) {
            c.target = as_value_error([&] { return sparse::parse_semi_sparse_target(v); });
          })
      .def_property(
          "algorithm", [](const SemiSparseTrainingConfig& c) { return core::prune_algorithm_name(c.algorithm); },
          [](SemiSparseTrainingConfig& c, const std::string& v) {
            c.algorithm = as_value_error([&] { return core::parse_prune_algorithm(v); });
          })
      .def_property(
          "gradient", [](const SemiSparseTrainingConfig& c) { return core::semi_sparse_gradient_name(c.gradient); },
          [](SemiSparseTrainingConfig& c, const std::string& v) {
            c.gradient = as_value_error([&] { return core::parse_semi_sparse_gradient(v); });
          })
      .def("validate", [](const SemiSparseTrainingConfig& c) { as_value_error([&] { c.validate(); }); })
      .def("__repr__", &SemiSparseTrainingConfig::to_string)
      .def("__eq__", [](const SemiSparseTrainingConfig& a, const SemiSparseTrainingConfig& b) {
        return a.target == b.target && a.algorithm == b.algorithm && a.gradient == b.gradient;
      })
      .def(py::pickle(
          [](const SemiSparseTrainingConfig& c) {
            return py::make_tuple(sparse::semi_sparse_target_name(c.target), core::prune_algorithm_name(c.algorithm),
                                  core::semi_sparse_gradient_name(c.gradient));
          },
          [](const py::tuple& t) {
            SemiSparseTrainingConfig c;
            c.target = sparse::parse_semi_sparse_target(t[0].cast<std::string>());
            c.algorithm = core::parse_prune_algorithm(t[1].cast<std::string>());
            c.gradient = core::parse_semi_sparse_gradient(t[2].cast<std::string>());
            return c;
          }));

  m.def("semi_sparse_unsupported_reason",
        [](int64_t out_features, int64_t in_features, const std::string& device, bool activation) {
          return as_value_error([&] {
            return core::semi_sparse_unsupported_reason(out_features, in_features, device_type(device), activation);
          });
        },
        py::arg("out_features"), py::arg("in_features"), py::arg("device"), py::arg("activation") = false,
        "Why the 2:4 training ops cannot take a linear of this shape on this device ('cpu', 'cuda'), or None.");
  m.def("semi_sparse_skip_reason",
        [](const SemiSparseTrainingConfig& config, int64_t out_features, int64_t in_features, const std::string& device,
           bool user_filter) {
          return as_value_error([&] {
            return sparse::semi_sparse_skip_reason(config, out_features, in_features, device_type(device), user_filter);
          });
        },
        py::arg("config"), py::arg("out_features"), py::arg("in_features"), py::arg("device"), py::arg("user_filter"),
        "Why convert_to_semi_sparse_training leaves such a layer dense (shape rule; without a user filter, also the "
        "measured-faster table), or None.");
  m.def("semi_sparse_dense_after_step",
        [](int64_t total_steps, double fraction) {
          return as_value_error([&] { return sparse::dense_after_step(total_steps, fraction); });
        },
        py::arg("total_steps"), py::arg("dense_after_fraction"),
        "The step at which a sparse-then-dense schedule turns dense (total_steps for a fraction of 1).");
  m.def("semi_sparse_measured_speedups",
        [] {
          py::list rows;
          for (const auto& r : sparse::measured_speedups()) {
            py::dict d;
            d["target"] = sparse::semi_sparse_target_name(r.target);
            d["out_features"] = r.out_features;
            d["in_features"] = r.in_features;
            d["tokens"] = r.tokens;
            d["speedup"] = r.speedup;
            d["gpu"] = r.gpu;
            rows.append(d);
          }
          return rows;
        },
        "The shapes measured faster with 2:4 than dense (sparse/speed_table.cpp); empty until a GPU run fills it.");
}

}  // namespace lowbit::python
