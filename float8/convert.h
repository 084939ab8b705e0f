// convert_to_float8_training: make the lowbit::nn::Linear layers of a model train in float8.
#pragma once

#include <lowbit/float8/config.h>
#include <lowbit/nn/convert.h>

namespace lowbit::float8 {

// Installs the float8 method on every lowbit::nn::Linear that `filter` accepts (all, if none)
// and whose in/out features are multiples of 16 (unless config.pad_inner_dim). Linears already
// in float8 and layers on the CPU without config.emulate are errors or skips as the summary says.
// All-or-nothing: on error the model is unchanged.
// The rule convert_to_float8_training applies to one linear (both faces): a reason to leave it in
// high precision, or nullopt to convert it. `method` is its current linear method ("plain", ...),
// `filter_accepts` the user filter's verdict. Checked in order: the filter, already float8 (or
// another method), dims not multiples of 16 (unless config.pad_inner_dim); then, for a layer that
// would be converted, a device without an fp8 GEMM and no config.emulate is an error (c10::Error)
// naming the layer and the alternatives.
std::optional<std::string> float8_skip_reason(const std::string& name, const std::string& method, bool filter_accepts,
                                              int64_t in_features, int64_t out_features, const c10::Device& device,
                                              const Float8LinearConfig& config);

nn::ConvertSummary convert_to_float8_training(torch::nn::Module& model, const Float8LinearConfig& config = {},
                                              const nn::LinearFilter& filter = nullptr);

}  // namespace lowbit::float8
