// The optimizer state file shared by both faces: lowbit::optim::save_state / load_state here,
// lowbit.optim.save_state / load_state in Python, one safetensors format:
//   tensors     "state.<i>.<name>": i = the parameter's index over all groups in order (as in
//               torch's state_dict), name = step, exp_avg, exp_avg_scale, exp_avg_sq,
//               exp_avg_sq_scale (parameters that never had a gradient have no entries)
//   __metadata__ "format" = "lowbit.optim/1", "optimizer" = AdamW8bit | AdamW4bit | AdamWFp8,
//               "state_format", "num_param_groups", and per group g "param_groups.<g>.<key>"
//               for params (comma-separated indices), lr, beta1, beta2, eps, weight_decay,
//               block_size, bf16_stochastic_round (true/false), min_quantized_size; floats
//               are written with 17 significant digits, so they round-trip exactly.
#pragma once

#include <string>

#include <lowbit/optim/adamw_lowbit.h>

namespace lowbit::optim {

// Writes the optimizer's state and hyperparameters to `path` (safetensors, see above).
void save_state(const AdamWLowBit& optimizer, const std::string& path);

// Restores what save_state (of either face) wrote into an optimizer over the same parameters:
// same number of groups and parameters per group, same state_format; states are checked against
// the parameters' shapes and moved to their devices; the groups' hyperparameters are restored.
void load_state(AdamWLowBit& optimizer, const std::string& path);

}  // namespace lowbit::optim
