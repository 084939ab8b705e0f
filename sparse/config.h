// SemiSparseTrainingConfig: how convert_to_semi_sparse_training makes a linear train with 2:4 sparsity.
#pragma once

#include <string>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/semi_sparse_linear.h>

namespace lowbit::sparse {

// The pruning rule and the gradient modes are core numerics; the sparse feature re-exports them.
using core::PruneAlgorithm;
using core::SemiSparseGradient;

// Which operand of the linear is pruned every call:
//   Weight      the weight (lowbit::semi_sparse_linear; Python SemiSparseLinear): forward and
//               grad_input GEMMs are 2:4, grad_weight is dense.
//   Activation  the input (lowbit::semi_sparse_activation_linear; Python SemiSparseActivationLinear),
//               for layers fed by naturally sparse activations, e.g. the second linear of a
//               squared-ReLU FFN: forward and grad_weight GEMMs are 2:4, grad_input is dense.
enum class SemiSparseTarget { Weight, Activation };

SemiSparseTarget parse_semi_sparse_target(const std::string& name);  // "weight" | "activation"
std::string semi_sparse_target_name(SemiSparseTarget target);

struct SemiSparseTrainingConfig {
  SemiSparseTarget target = SemiSparseTarget::Weight;
  // A transposable (tile) rule: "largest_abs" (default) or "largest" (signed; for non-negative
  // activations the two are the same).
  PruneAlgorithm algorithm = PruneAlgorithm::LargestAbs;
  // What reaches the dense master tensor: "ste" (straight-through) or "masked".
  SemiSparseGradient gradient = SemiSparseGradient::Ste;

  // Throws if the options cannot train (a non-transposable algorithm).
  void validate() const;
  std::string to_string() const;
};

}  // namespace lowbit::sparse
