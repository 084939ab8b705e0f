// C++ entry points of the prune_2_4 op: the algorithm names, and the op through the dispatcher.
#include <lowbit/core/prune_2_4.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

PruneAlgorithm parse_prune_algorithm(const std::string& name) {
  if (name == "largest_abs") return PruneAlgorithm::LargestAbs;
  if (name == "largest") return PruneAlgorithm::Largest;
  if (name == "largest_abs_rows") return PruneAlgorithm::LargestAbsRows;
  TORCH_CHECK(false, "prune_2_4: unknown algorithm '", name, "'; allowed: 'largest_abs', 'largest', 'largest_abs_rows'");
}

std::string prune_algorithm_name(PruneAlgorithm algorithm) {
  switch (algorithm) {
    case PruneAlgorithm::LargestAbs: return "largest_abs";
    case PruneAlgorithm::Largest: return "largest";
    case PruneAlgorithm::LargestAbsRows: return "largest_abs_rows";
  }
  return "";
}

std::tuple<at::Tensor, at::Tensor> prune_2_4(const at::Tensor& x, const std::string& algorithm) {
  static auto op = ops::find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, c10::string_view)>(
      "lowbit::prune_2_4");
  return op.call(x, algorithm);
}

}  // namespace lowbit::core
