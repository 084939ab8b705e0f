#include <lowbit/nn/convert.h>

#include <torch/nn/modules/linear.h>

#include <sstream>

namespace lowbit::nn {

std::string ConvertSummary::to_string() const {
  std::ostringstream out;
  for (const auto& name : converted) out << "converted: " << (name.empty() ? "<root>" : name) << "\n";
  for (const auto& [name, reason] : skipped) out << "skipped:   " << (name.empty() ? "<root>" : name) << " (" << reason << ")\n";
  return out.str();
}

ConvertSummary swap_linear_methods(torch::nn::Module& root, const SkipReason& skip, const MethodFactory& make,
                                   const std::string& method_label) {
  ConvertSummary summary;
  std::vector<std::pair<LinearImpl*, std::shared_ptr<LinearMethod>>> plan;
  // The root by reference (it may live on the stack), then its descendants.
  std::vector<std::pair<std::string, torch::nn::Module*>> modules{{"", &root}};
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/false))
    modules.emplace_back(item.key(), item.value().get());
  for (const auto& [name, module] : modules) {
    if (auto* layer = dynamic_cast<LinearImpl*>(module)) {
      if (auto reason = skip(name, *layer)) {
        summary.skipped.emplace_back(name, *reason);
        continue;
      }
      plan.emplace_back(layer, make(name, *layer));
      summary.converted.push_back(name + " (" + method_label + ")");
    } else if (dynamic_cast<torch::nn::LinearImpl*>(module)) {
      summary.skipped.emplace_back(name, "torch::nn::Linear cannot be converted from outside; build the model with "
                                         "lowbit::nn::Linear");
    }
  }
  for (auto& [layer, method] : plan) layer->set_method(std::move(method));
  return summary;
}

}  // namespace lowbit::nn
