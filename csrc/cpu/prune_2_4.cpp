// CPU reference kernel of lowbit::prune_2_4: per tile / group, the rule of core/prune_2_4_rule.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <type_traits>

#include <lowbit/core/prune_2_4_rule.h>
#include <lowbit/ops/prune_2_4_checks.h>

namespace lowbit::cpu {
namespace {

// Keys in double for float64 input, float otherwise: both exact, so the ranking is the input's.
template <typename T>
using KeyOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
void prune_tiles(const T* x, T* values, bool* mask, int64_t rows, int64_t cols, bool by_magnitude) {
  using K = KeyOf<T>;
  const int64_t tile_cols = cols / 4, tiles = rows / 4 * tile_cols;
  at::parallel_for(0, tiles, 256, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t / tile_cols * 4, c0 = t % tile_cols * 4;
      K key[16];
      for (int i = 0; i < 16; ++i) key[i] = core::prune_key(static_cast<K>(x[(r0 + i / 4) * cols + c0 + i % 4]), by_magnitude);
      const uint32_t kept = core::prune_tile_4x4(key);
      for (int i = 0; i < 16; ++i) {
        const int64_t at = (r0 + i / 4) * cols + c0 + i % 4;
        const bool keep = (kept >> i) & 1u;
        mask[at] = keep;
        values[at] = keep ? x[at] : T(0);
      }
    }
  });
}

template <typename T>
void prune_rows(const T* x, T* values, bool* mask, int64_t groups) {
  using K = KeyOf<T>;
  at::parallel_for(0, groups, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      K key[4];
      for (int i = 0; i < 4; ++i) key[i] = core::prune_key(static_cast<K>(x[4 * g + i]), true);
      const uint32_t kept = core::prune_group_of_4(key);
      for (int i = 0; i < 4; ++i) {
        const bool keep = (kept >> i) & 1u;
        mask[4 * g + i] = keep;
        values[4 * g + i] = keep ? x[4 * g + i] : T(0);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> prune_2_4_cpu(const at::Tensor& x, c10::string_view algorithm) {
  const core::PruneAlgorithm algo = ops::check_prune_2_4_args(x, algorithm);
  const at::Tensor xc = x.contiguous();
  at::Tensor values = at::empty(x.sizes(), x.options());
  at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kBool));
  const int64_t rows = x.size(0), cols = x.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "prune_2_4_cpu", [&] {
    if (algo == core::PruneAlgorithm::LargestAbsRows) {
      prune_rows(xc.const_data_ptr<scalar_t>(), values.data_ptr<scalar_t>(), mask.data_ptr<bool>(), rows * cols / 4);
    } else {
      prune_tiles(xc.const_data_ptr<scalar_t>(), values.data_ptr<scalar_t>(), mask.data_ptr<bool>(), rows, cols,
                  algo == core::PruneAlgorithm::LargestAbs);
    }
  });
  return {values, mask};
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("prune_2_4", &prune_2_4_cpu); }

}  // namespace lowbit::cpu
