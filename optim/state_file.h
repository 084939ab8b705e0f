// The optimizer state file, one reader and one writer for both faces: lowbit::optim::save_state /
// load_state here, and lowbit.optim.save_state / load_state in Python through the dispatcher ops
// lowbit::optim_save_state / optim_load_state (optim/state_file_ops.cpp). One safetensors file:
//   tensors     "state.<i>.<name>": i = the parameter's index over all groups in order (as in
//               torch's state_dict), name = step, exp_avg, exp_avg_scale, exp_avg_sq,
//               exp_avg_sq_scale (parameters that never had a gradient have no entries)
//   __metadata__ "format" = "lowbit.optim/1", "optimizer" = AdamW8bit | AdamW4bit | AdamWFp8,
//               "state_format", "num_param_groups", and per group g "param_groups.<g>.<key>"
//               for params (comma-separated indices), lr, beta1, beta2, eps, weight_decay,
//               block_size, bf16_stochastic_round (true/false), min_quantized_size; floats
//               are written with 17 significant digits, so they round-trip exactly (the reader
//               takes any decimal form, e.g. Python's repr of earlier files).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include <lowbit/optim/adamw_lowbit.h>

namespace lowbit::optim {

// Writes the optimizer's state and hyperparameters to `path` (safetensors, see above).
void save_state(const AdamWLowBit& optimizer, const std::string& path);

// Restores what save_state (of either face) wrote into an optimizer over the same parameters:
// same number of groups and parameters per group, same state_format; states are checked against
// the parameters' shapes and moved to their devices; the groups' hyperparameters are restored.
// The optimizer changes only when all of it fits.
void load_state(AdamWLowBit& optimizer, const std::string& path);

// ---- the file, independent of the face that holds the optimizer ------------------------------

// One parameter group's hyperparameters and the indices of its parameters.
struct StateFileGroup {
  std::vector<int64_t> params;
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  int64_t block_size = 0, min_quantized_size = 0;
  bool bf16_stochastic_round = false;
};

// The five state tensors of one parameter, in the order of the names above.
using ParamStateTensors = std::array<at::Tensor, 5>;

struct StateFile {
  std::string optimizer;     // AdamW8bit | AdamW4bit | AdamWFp8
  std::string state_format;  // 8bit | 4bit | fp8
  std::vector<StateFileGroup> groups;
  std::map<int64_t, ParamStateTensors> states;  // by parameter index
};

// The state tensors' names, in ParamStateTensors order.
const std::array<const char*, 5>& state_tensor_names();

void write_state_file(const std::string& path, const StateFile& file);

// Reads and checks the file's own structure (format tag, metadata, complete states).
StateFile read_state_file(const std::string& path);

// Checks that `file` fits an optimizer of `state_format` whose groups hold `group_params`: same
// format, same group sizes, every state of a shape, dtype and layout its parameter takes under its
// group's block_size; then moves every state to its parameter's device. Errors are ValueErrors
// naming the file, the group or parameter, and what was expected.
void fit_state_file(StateFile& file, const std::string& state_format,
                    const std::vector<std::vector<at::Tensor>>& group_params, const std::string& path);

// The file without its tensors, as the JSON manifest the dispatcher ops exchange with Python:
//   {"optimizer": ..., "state_format": ..., "param_groups": [{"params": [0, 1], "lr": ...,
//    "betas": [b1, b2], "eps": ..., "weight_decay": ..., "block_size": ...,
//    "bf16_stochastic_round": false, "min_quantized_size": ...}, ...], "state": [0, 1, ...]}
// "state" lists the parameters with a state, in order; their tensors travel as one flat list,
// five per parameter.
std::string state_file_manifest(const StateFile& file);
StateFile state_file_from_manifest(const std::string& manifest, at::TensorList tensors);
std::vector<at::Tensor> state_file_tensors(const StateFile& file);

}  // namespace lowbit::optim
