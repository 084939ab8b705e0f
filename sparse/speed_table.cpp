#include <lowbit/sparse/speed_table.h>

namespace lowbit::sparse {

const std::vector<MeasuredSpeedup>& measured_speedups() {
  // Rows come from `python benchmarks/bench_sparse.py --device cuda` on a GPU; none has run yet.
  static const std::vector<MeasuredSpeedup> table = {};
  return table;
}

std::optional<double> measured_speedup(SemiSparseTarget target, int64_t out_features, int64_t in_features) {
  for (const MeasuredSpeedup& row : measured_speedups()) {
    if (row.target == target && row.out_features == out_features && row.in_features == in_features && row.speedup > 1)
      return row.speedup;
  }
  return std::nullopt;
}

}  // namespace lowbit::sparse
