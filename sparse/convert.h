// convert_to_semi_sparse_training: make the lowbit::nn::Linear layers of a model train with 2:4
// sparsity, and swap_semi_sparse_linear_with_linear: make them dense again (e.g. for the last part
// of a sparse-then-dense schedule).
#pragma once

#include <optional>
#include <string>

#include <lowbit/nn/convert.h>
#include <lowbit/sparse/config.h>

namespace lowbit::sparse {

// Why convert_to_semi_sparse_training leaves a layer of (out_features, in_features) on `device`
// dense, or nullopt to convert it: first the shape rule of the 2:4 ops
// (core::semi_sparse_unsupported_reason), then, when the caller gave no filter of its own, the
// default filter: only shapes measured faster than dense on a GPU (sparse/speed_table.h). Both
// faces decide with this function.
std::optional<std::string> semi_sparse_skip_reason(const SemiSparseTrainingConfig& config, int64_t out_features,
                                                   int64_t in_features, c10::DeviceType device, bool user_filter);

// Installs the 2:4 method on every lowbit::nn::Linear that semi_sparse_skip_reason accepts and
// `filter` selects (a given filter replaces the measured-faster default; the shape rule always
// holds). Layers already semi-sparse are skipped. Returns what was converted and skipped, and why.
// All-or-nothing: on error the model is unchanged.
nn::ConvertSummary convert_to_semi_sparse_training(torch::nn::Module& model, const SemiSparseTrainingConfig& config = {},
                                                   const nn::LinearFilter& filter = nullptr);

// Restores the plain (dense) method on every semi-sparse lowbit::nn::Linear. The weights are the
// dense master weights as they are, or with prune_weights the weights the sparse forward used
// (W⊙M, written into the master weight of each weight-sparse layer), so the model computes the same
// function right after the switch: the dense phase of a sparse-then-dense schedule then starts
// where the sparse one ended and the pruned entries regrow from zero.
nn::ConvertSummary swap_semi_sparse_linear_with_linear(torch::nn::Module& model, bool prune_weights = false);

// A sparse-then-dense schedule over total_steps: the step (0-based) at which training turns dense,
// round(dense_after_fraction * total_steps), at least 1; total_steps (never) for a fraction of 1.
// dense_after_fraction must be in (0, 1]. The recipes' sparse.dense_after_fraction, in both faces.
int64_t dense_after_step(int64_t total_steps, double dense_after_fraction);

}  // namespace lowbit::sparse
