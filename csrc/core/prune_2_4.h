// lowbit::core::prune_2_4 — 2:4 semi-structured pruning (the rule: core/prune_2_4_rule.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>

namespace lowbit::core {

// Which elements a group of 4 keeps:
//   LargestAbs      largest magnitudes on aligned 4x4 tiles, at most 2 per row AND per column, so
//                   the transpose is 2:4 too (what training needs: grad_input multiplies by it);
//                   the default for weights.
//   Largest         the same tiles ranked by signed value (for non-negative activations, where it
//                   equals LargestAbs).
//   LargestAbsRows  largest 2 magnitudes of each aligned group of 4 along a row; always keeps half,
//                   but the transpose is not 2:4.
enum class PruneAlgorithm { LargestAbs, Largest, LargestAbsRows };

// "largest_abs" | "largest" | "largest_abs_rows" -> algorithm; anything else is an error listing them.
PruneAlgorithm parse_prune_algorithm(const std::string& name);
std::string prune_algorithm_name(PruneAlgorithm algorithm);
// Whether the algorithm's pattern stays 2:4 when transposed (the tile algorithms).
inline bool is_transposable(PruneAlgorithm algorithm) { return algorithm != PruneAlgorithm::LargestAbsRows; }

// Prunes a 2-D x (float32, float64, bfloat16 or float16) to 2:4: returns (values, mask) with
// values = x where mask, +0 elsewhere, in x's dtype, and mask a bool tensor of x's shape. Tile
// algorithms need rows and columns to be multiples of 4, the row algorithm columns. Ties and NaN
// follow core/prune_2_4_rule.h, identically on CPU and CUDA.
std::tuple<at::Tensor, at::Tensor> prune_2_4(const at::Tensor& x, const std::string& algorithm = "largest_abs");

}  // namespace lowbit::core
