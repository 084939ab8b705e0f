// The optimizer state file as dispatcher ops, so the Python face reads and writes it with the C++
// reader and writer (state_file.h) and no tensor crosses pybind11:
//   lowbit::optim_save_state(path, manifest, tensors)   writes a file from the JSON manifest
//                                                      (groups' hyperparameters, which parameters
//                                                      have a state) and five tensors per state
//   lowbit::optim_load_state(path, state_format, params, group_sizes) -> (manifest, tensors)
//                                                      reads a file, checks it against the
//                                                      optimizer's parameters (params: all groups'
//                                                      parameters in order) and returns it with its
//                                                      states on the parameters' devices
// File I/O, not numerics: one kernel for every backend, not traceable by torch.compile.
#include <torch/library.h>

#include <lowbit/optim/state_file.h>

namespace lowbit::optim {
namespace {

void optim_save_state_op(c10::string_view path, c10::string_view manifest, at::TensorList tensors) {
  write_state_file(std::string(path), state_file_from_manifest(std::string(manifest), tensors));
}

std::tuple<std::string, std::vector<at::Tensor>> optim_load_state_op(c10::string_view path,
                                                                      c10::string_view state_format,
                                                                      at::TensorList params,
                                                                      at::IntArrayRef group_sizes) {
  std::vector<std::vector<at::Tensor>> group_params;
  size_t next = 0;
  for (int64_t n : group_sizes) {
    TORCH_CHECK_VALUE(n >= 0 && next + static_cast<size_t>(n) <= params.size(), "optim_load_state: group_sizes ",
                      group_sizes, " do not add up to the ", params.size(), " parameters given");
    group_params.emplace_back(params.begin() + next, params.begin() + next + n);
    next += n;
  }
  TORCH_CHECK_VALUE(next == params.size(), "optim_load_state: group_sizes ", group_sizes, " do not add up to the ",
                    params.size(), " parameters given");
  const std::string p(path);
  StateFile file = read_state_file(p);
  fit_state_file(file, std::string(state_format), group_params, p);
  return {state_file_manifest(file), state_file_tensors(file)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("optim_save_state(str path, str manifest, Tensor[] tensors) -> ()", &optim_save_state_op);
  m.def("optim_load_state(str path, str state_format, Tensor[] params, int[] group_sizes)"
        " -> (str manifest, Tensor[] tensors)",
        &optim_load_state_op);
}

}  // namespace lowbit::optim
