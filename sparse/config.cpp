#include <lowbit/sparse/config.h>

#include <c10/util/Exception.h>

namespace lowbit::sparse {

SemiSparseTarget parse_semi_sparse_target(const std::string& name) {
  if (name == "weight") return SemiSparseTarget::Weight;
  if (name == "activation") return SemiSparseTarget::Activation;
  TORCH_CHECK(false, "SemiSparseTrainingConfig: unknown target '", name, "'; allowed: 'weight', 'activation'");
}

std::string semi_sparse_target_name(SemiSparseTarget target) {
  return target == SemiSparseTarget::Weight ? "weight" : "activation";
}

void SemiSparseTrainingConfig::validate() const {
  TORCH_CHECK(core::is_transposable(algorithm), "SemiSparseTrainingConfig: algorithm '",
              core::prune_algorithm_name(algorithm), "' is not transposable, and training multiplies by the transpose "
              "of the pruned operand; use 'largest_abs' or 'largest'");
}

std::string SemiSparseTrainingConfig::to_string() const {
  return "SemiSparseTrainingConfig(target='" + semi_sparse_target_name(target) + "', algorithm='" +
         core::prune_algorithm_name(algorithm) + "', gradient='" + core::semi_sparse_gradient_name(gradient) + "')";
}

}  // namespace lowbit::sparse
