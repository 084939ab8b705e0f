// convert_to_float8_training: make the lowbit::nn::Linear layers of a model train in float8.
#pragma once

#include <lowbit/float8/config.h>
#include <lowbit/nn/convert.h>

namespace lowbit::float8 {

// Installs the float8 method on every lowbit::nn::Linear that `filter` accepts (all, if none)
// and whose in/out features are multiples of 16 (unless config.pad_inner_dim). Linears already
// in float8 and layers on the CPU without config.emulate are errors or skips as the summary says.
// All-or-nothing: on error the model is unchanged.
nn::ConvertSummary convert_to_float8_training(torch::nn::Module& model, const Float8LinearConfig& config = {},
                                              const nn::LinearFilter& filter = nullptr);

}  // namespace lowbit::float8
