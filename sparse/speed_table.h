// Which layer shapes train faster with 2:4 sparsity than dense, as measured, not assumed.
//
// 2:4 GEMMs are not automatically faster: on H100-class GPUs users report 0.4-0.95x through
// torch's path, and the pruning and compression run every step. So the default filter of
// convert_to_semi_sparse_training converts only the shapes listed here, each measured faster than
// dense bf16 by benchmarks/bench_sparse.py (forward + backward, prune + compress included).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <lowbit/sparse/config.h>

namespace lowbit::sparse {

struct MeasuredSpeedup {
  SemiSparseTarget target;
  int64_t out_features, in_features;
  int64_t tokens;   // rows of the input in the measurement
  double speedup;   // dense time / 2:4 time, > 1
  std::string gpu;  // where it was measured, e.g. "H200 (sm_90)"
};

// The table. Empty until a GPU run of benchmarks/bench_sparse.py fills it (it prints the rows to
// add): no shape has been measured yet, so by default nothing is converted.
const std::vector<MeasuredSpeedup>& measured_speedups();

// The measured speedup of a CUDA layer of this shape, if the table has one.
std::optional<double> measured_speedup(SemiSparseTarget target, int64_t out_features, int64_t in_features);

}  // namespace lowbit::sparse
