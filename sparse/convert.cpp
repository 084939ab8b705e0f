#include <lowbit/sparse/convert.h>

#include <algorithm>
#include <cmath>

#include <torch/utils.h>

#include <lowbit/sparse/semi_sparse_linear_method.h>
#include <lowbit/sparse/speed_table.h>

namespace lowbit::sparse {

std::optional<std::string> semi_sparse_skip_reason(const SemiSparseTrainingConfig& config, int64_t out_features,
                                                   int64_t in_features, c10::DeviceType device, bool user_filter) {
  const bool activation = config.target == SemiSparseTarget::Activation;
  if (auto reason = core::semi_sparse_unsupported_reason(out_features, in_features, device, activation)) return reason;
  if (user_filter) return std::nullopt;
  const std::string shape = "(" + std::to_string(out_features) + ", " + std::to_string(in_features) + ")";
  if (device != c10::DeviceType::CUDA) {
    return "2:4 on " + std::string(c10::DeviceTypeName(device)) + " is an exact reference, never faster than dense; "
           "give a filter to convert it anyway, e.g. to study quality";
  }
  if (!measured_speedup(config.target, out_features, in_features)) {
    return "shape " + shape + " (" + semi_sparse_target_name(config.target) + "-sparse) has not been measured faster "
           "than dense bf16 (benchmarks/bench_sparse.py; sparse/speed_table.cpp lists the measured shapes and is empty "
           "until a GPU run fills it); give a filter to convert it anyway";
  }
  return std::nullopt;
}

nn::ConvertSummary convert_to_semi_sparse_training(torch::nn::Module& model, const SemiSparseTrainingConfig& config,
                                                   const nn::LinearFilter& filter) {
  config.validate();
  auto skip = [&](const std::string& name, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (filter && !filter(name, layer)) return "excluded by the filter";
    if (dynamic_cast<const SemiSparseLinearMethod*>(&layer.method())) return "already semi-sparse";
    if (layer.method().name() != "plain") return "has the '" + layer.method().name() + "' method; 2:4 replaces plain ones only";
    return semi_sparse_skip_reason(config, layer.options.out_features(), layer.options.in_features(),
                                   layer.weight.device().type(), filter != nullptr);
  };
  auto make = [&](const std::string&, nn::LinearImpl&) { return std::make_shared<SemiSparseLinearMethod>(config); };
  return nn::swap_linear_methods(model, skip, make, "semi_sparse_" + semi_sparse_target_name(config.target));
}

nn::ConvertSummary swap_semi_sparse_linear_with_linear(torch::nn::Module& model, bool prune_weights) {
  auto skip = [](const std::string&, const nn::LinearImpl& layer) -> std::optional<std::string> {
    if (dynamic_cast<const SemiSparseLinearMethod*>(&layer.method())) return std::nullopt;
    return "not semi-sparse";
  };
  // Pruned weights are computed while the plan is built and written only after every layer has one.
  std::vector<std::pair<at::Tensor, at::Tensor>> writes;  // (master weight, its pruned values)
  auto make = [&](const std::string&, nn::LinearImpl& layer) {
    const auto* method = dynamic_cast<const SemiSparseLinearMethod*>(&layer.method());
    if (prune_weights && method->config().target == SemiSparseTarget::Weight) {
      const std::string algorithm = core::prune_algorithm_name(method->config().algorithm);
      writes.emplace_back(layer.weight, std::get<0>(core::prune_2_4(layer.weight.detach(), algorithm)));
    }
    return std::make_shared<nn::PlainLinearMethod>();
  };
  nn::ConvertSummary summary = nn::swap_linear_methods(model, skip, make, prune_weights ? "plain, pruned" : "plain");
  torch::NoGradGuard no_grad;
  for (auto& [weight, pruned] : writes) weight.copy_(pruned);
  return summary;
}

int64_t dense_after_step(int64_t total_steps, double dense_after_fraction) {
  TORCH_CHECK(dense_after_fraction > 0 && dense_after_fraction <= 1, "dense_after_fraction must be in (0, 1], got ",
              dense_after_fraction, " (1: sparse to the end)");
  TORCH_CHECK(total_steps >= 0, "dense_after_step: total_steps must be >= 0, got ", total_steps);
  if (dense_after_fraction == 1) return total_steps;
  const auto step = static_cast<int64_t>(std::llround(dense_after_fraction * static_cast<double>(total_steps)));
  return std::min(total_steps, std::max<int64_t>(1, step));
}

}  // namespace lowbit::sparse
