// Swapping the linear method of every selected lowbit::nn::Linear in a module tree: the one
// walker behind convert_to_float8_training, qat::prepare / convert, sparse::swap_to_semi_sparse
// and inference::quantize_.
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <lowbit/nn/linear.h>

namespace lowbit::nn {

// What a convert function changed, and what it left alone and why.
struct ConvertSummary {
  std::vector<std::string> converted;                        // qualified module names
  std::vector<std::pair<std::string, std::string>> skipped;  // (name, reason)
  // One line per module, e.g. "converted: layers.0.fc1 (float8_tensorwise)".
  std::string to_string() const;
};

// A user filter: (qualified name, layer) -> convert it?
using LinearFilter = std::function<bool(const std::string& name, const LinearImpl& layer)>;

// Decides for one layer: a reason to skip it, or nullopt to convert it.
using SkipReason = std::function<std::optional<std::string>(const std::string& name, const LinearImpl& layer)>;

// Builds the new method for one layer (may read the layer's weights; must not change them).
using MethodFactory = std::function<std::shared_ptr<LinearMethod>(const std::string& name, LinearImpl& layer)>;

// Walks root.named_modules(). Each lowbit::nn::Linear that `skip` does not reject gets the method
// `make` builds; plain torch::nn::Linear modules are reported as skipped (they cannot be changed
// from outside). All-or-nothing: every method is built before any is installed, so an error
// leaves the model as it was.
ConvertSummary swap_linear_methods(torch::nn::Module& root, const SkipReason& skip, const MethodFactory& make,
                                   const std::string& method_label);

}  // namespace lowbit::nn
