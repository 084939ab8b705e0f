// CUDA kernel of lowbit::prune_2_4: one thread per 4x4 tile (or per group of 4 for
// largest_abs_rows), running the same core/prune_2_4_rule.h functions as the CPU reference
// (csrc/cpu/prune_2_4.cpp), with keys converted exactly (float for 16-bit and float32 inputs,
// double for float64), so masks and values are bit-identical. Kept values are copied, not
// converted, so NaN payloads and signed zeros survive.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <type_traits>

#include <lowbit/core/prune_2_4_rule.h>
#include <lowbit/ops/prune_2_4_checks.h>

#include "launch.cuh"

namespace lowbit::cuda {
namespace {

template <typename T>
using KeyOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ KeyOf<T> key_of(T v, bool by_magnitude) {
  if constexpr (std::is_same_v<T, double>) {
    return core::prune_key(v, by_magnitude);
  } else {
    return core::prune_key(to_float(v), by_magnitude);
  }
}

template <typename T>
__global__ void prune_tiles_kernel(const T* x, T* values, bool* mask, int64_t cols, int64_t tiles, bool by_magnitude) {
  const int64_t tile_cols = cols / 4;
  const GridStride s = grid_stride();
  for (int64_t t = s.first; t < tiles; t += s.step) {
    const int64_t r0 = t / tile_cols * 4, c0 = t % tile_cols * 4;
    T v[16];
    KeyOf<T> key[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      v[i] = x[(r0 + i / 4) * cols + c0 + i % 4];
      key[i] = key_of(v[i], by_magnitude);
    }
    const uint32_t kept = core::prune_tile_4x4(key);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int64_t at = (r0 + i / 4) * cols + c0 + i % 4;
      const bool keep = (kept >> i) & 1u;
      values[at] = keep ? v[i] : T(0);
      mask[at] = keep;
    }
  }
}

template <typename T>
__global__ void prune_rows_kernel(const T* x, T* values, bool* mask, int64_t groups) {
  const GridStride s = grid_stride();
  for (int64_t g = s.first; g < groups; g += s.step) {
    T v[4];
    KeyOf<T> key[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[i] = x[4 * g + i];
      key[i] = key_of(v[i], true);
    }
    const uint32_t kept = core::prune_group_of_4(key);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const bool keep = (kept >> i) & 1u;
      values[4 * g + i] = keep ? v[i] : T(0);
      mask[4 * g + i] = keep;
    }
  }
}

std::tuple<at::Tensor, at::Tensor> prune_2_4_cuda(const at::Tensor& x, c10::string_view algorithm) {
  const core::PruneAlgorithm algo = ops::check_prune_2_4_args(x, algorithm);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor values = at::empty(x.sizes(), x.options());
  at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kBool));
  const int64_t rows = x.size(0), cols = x.size(1);
  if (x.numel() == 0) return {values, mask};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  visit_float_type<true>(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = xc.const_data_ptr<T>();
    if (algo == core::PruneAlgorithm::LargestAbsRows) {
      const int64_t groups = rows * cols / 4;
      prune_rows_kernel<<<grid_for(groups), kBlockThreads, 0, stream>>>(in, values.data_ptr<T>(), mask.data_ptr<bool>(),
                                                                         groups);
    } else {
      const int64_t tiles = rows / 4 * (cols / 4);
      prune_tiles_kernel<<<grid_for(tiles), kBlockThreads, 0, stream>>>(
          in, values.data_ptr<T>(), mask.data_ptr<bool>(), cols, tiles, algo == core::PruneAlgorithm::LargestAbs);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {values, mask};
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("prune_2_4", &prune_2_4_cuda); }

}  // namespace lowbit::cuda
