// Argument checks of lowbit::prune_2_4, shared by its Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include <lowbit/core/prune_2_4.h>

namespace lowbit::ops {

// Checks x and the algorithm name; returns the parsed algorithm.
inline core::PruneAlgorithm check_prune_2_4_args(const at::Tensor& x, c10::string_view algorithm) {
  const core::PruneAlgorithm algo = core::parse_prune_algorithm(std::string(algorithm));
  const at::ScalarType t = x.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf, "prune_2_4: input dtype ", t,
              " is not supported; allowed: torch.float32, torch.float64, torch.bfloat16, torch.float16");
  TORCH_CHECK(x.dim() == 2, "prune_2_4: input must be 2-D (rows, columns), got shape ", x.sym_sizes());
  TORCH_SYM_CHECK((x.sym_size(1) % 4).sym_eq(0), "prune_2_4: columns (", x.sym_size(1),
                  ") must be a multiple of 4 (groups of 4 along each row)");
  if (core::is_transposable(algo)) {
    TORCH_SYM_CHECK((x.sym_size(0) % 4).sym_eq(0), "prune_2_4: rows (", x.sym_size(0), ") must be a multiple of 4 ",
                    "for algorithm '", std::string(algorithm), "' (aligned 4x4 tiles); 'largest_abs_rows' needs only "
                    "the columns to be");
  }
  return algo;
}

}  // namespace lowbit::ops
