// Every recipe config key, declared once (recipes/keys.cpp): one function per section returns
// its keys with type, default, allowed values and help, plus the rules across them. A recipe's
// schema includes the sections it reads (recipe.cpp). To add a section (e.g. `sparse.*`), write
// its function here and include it in the recipes that read it; both faces see it at once.
#pragma once

#include <lowbit/recipes/schema.h>

#include <string>
#include <vector>

namespace lowbit::recipes {

Schema model_keys();     // model.*: Llama shapes (rules: LlamaConfig::validate)
Schema optim_keys();     // optim.*: optimizer and its hyperparameters
Schema float8_keys();    // float8.*: float8 training (convert_to_float8_training)
Schema sparse_keys();    // sparse.*: 2:4 sparse FFN weights, sparse-then-dense (lowbit::sparse)
Schema data_keys();      // data.*: Debian's fortunes as bytes, batch shape
Schema train_keys();     // train.*: the loop, schedule, device, outputs
Schema finetune_keys();  // finetune.*: what to start from and how to fine-tune
Schema quantize_keys();  // quantize.*: the formats to compare and the generation benchmark
Schema distributed_keys();  // distributed.*: torchrun ranks, FSDP sharding, float8 all-gather

// The choices of finetune.qat_scheme (the Python recipe maps each to a lowbit.qat config).
const std::vector<std::string>& qat_scheme_names();
// "" when `device` names a device this machine and build can run ("cpu", "cuda", "cuda:N"), else why not.
std::string device_problem(const std::string& device);

}  // namespace lowbit::recipes
