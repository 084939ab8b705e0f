// CUDA kernel of lowbit::choose_qparams_affine: per-block min / max of core::affine_min_term /
// affine_max_term, then the same core::affine_qparams_from_min_max as the CPU reference
// (csrc/cpu/affine.cpp), so scale and zero point are bit-identical (min and max are exact whatever
// the order; ±inf add nothing; a NaN makes the max the canonical NaN on both, whatever the order).
//
//   groups:  blocks that are contiguous runs (per-row, per-group of G along the last dim) and
//            numerous or short: one warp (short runs) or one block per run, no atomics.
//   general: any block_size (or few, long runs such as per-tensor): a grid-stride pass that keeps
//            a running min / max per thread while consecutive elements share a block, and
//            flushes it with atomicMin / atomicMax on order-preserving uint32 keys; a second
//            small kernel turns the keys into qparams.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <limits>
#include <math.h>

#include <lowbit/ops/affine_checks.h>

#include "affine_blocks.cuh"
#include "launch.cuh"
#include "reduce.cuh"

namespace lowbit::cuda {
namespace {

// Runs up to this length get one warp each; longer runs one block each.
constexpr int64_t kWarpRunMax = 2048;
// Runs this long or longer go to the general path unless there are enough to fill the GPU.
constexpr int64_t kLongRun = 16384;

struct QParamsSpec {
  core::QuantRange range;
  bool symmetric;
  core::ZeroPointDomain domain;
  float eps;
};

__device__ __forceinline__ void write_qparams(float mn, float mx, const QParamsSpec& p, float* scale, float* zp) {
  core::affine_qparams_from_min_max(mn, mx, p.range, p.symmetric, p.domain, p.eps, scale, zp);
}

// kGroup threads (a warp, or the whole block) own one run of `run` elements.
template <typename T, int kGroup>
__global__ void run_qparams_kernel(const T* x, int64_t num_runs, int64_t run, bool vectorized, QParamsSpec p,
                                   float* scale, float* zp) {
  constexpr int kRunsPerBlock = kBlockThreads / kGroup;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kRunsPerBlock + threadIdx.x / kGroup;
  if (g >= num_runs) return;  // whole warps only; the block-per-run grid has no extra runs
  float mn = INFINITY, mx = -INFINITY;
  const GridStride lanes{threadIdx.x % kGroup, kGroup};
  for_each_element(x + g * run, run, lanes, vectorized, [&](int64_t, T v) {
    const float f = to_float(v);
    mn = fminf(mn, core::affine_min_term(f));
    mx = core::max_propagating_nan(mx, core::affine_max_term(f));
  });
  if constexpr (kGroup == kWarpSize) {
    mn = warp_reduce(mn, MinOp{});
    mx = warp_reduce(mx, MaxNanOp{});
  } else {
    mn = block_reduce(mn, MinOp{}, INFINITY);
    mx = block_reduce(mx, MaxNanOp{}, -INFINITY);
  }
  if (threadIdx.x % kGroup == 0) write_qparams(mn, mx, p, &scale[g], &zp[g]);
}

__global__ void init_keys_kernel(uint32_t* min_keys, uint32_t* max_keys, int64_t num_blocks) {
  const GridStride s = grid_stride();
  for (int64_t b = s.first; b < num_blocks; b += s.step) {
    min_keys[b] = kOrderedPosInf;
    max_keys[b] = kOrderedNegInf;
  }
}

template <typename T, typename Blocks>
__global__ void minmax_atomic_kernel(const T* x, int64_t n, bool vectorized, Blocks blocks, uint32_t* min_keys,
                                     uint32_t* max_keys) {
  int64_t current = -1;  // block of the running min / max, -1 before the first element
  float mn = INFINITY, mx = -INFINITY;
  auto flush = [&] {
    if (current >= 0 && (mn <= mx || mx != mx)) {  // mn > mx: only ±inf seen, nothing to add
      atomicMin(&min_keys[current], float_to_ordered(mn));
      atomicMax(&max_keys[current], float_to_ordered(mx));
    }
  };
  for_each_element(x, n, grid_stride(), vectorized, [&](int64_t i, T v) {
    const int64_t b = blocks.block_of(i);
    if (b != current) {
      flush();
      current = b;
      mn = INFINITY;
      mx = -INFINITY;
    }
    const float f = to_float(v);
    mn = fminf(mn, core::affine_min_term(f));
    mx = core::max_propagating_nan(mx, core::affine_max_term(f));
  });
  // Large blocks (per-tensor): when the whole warp ends in one block, one lane flushes for all.
  const unsigned peers = __match_any_sync(0xffffffffu, static_cast<unsigned long long>(current));
  if (peers == 0xffffffffu) {
    mn = warp_reduce(mn, MinOp{});
    mx = warp_reduce(mx, MaxNanOp{});
    if (threadIdx.x % kWarpSize != 0) current = -1;
  }
  flush();
}

__global__ void qparams_from_keys_kernel(const uint32_t* min_keys, const uint32_t* max_keys, int64_t num_blocks,
                                         QParamsSpec p, float* scale, float* zp) {
  const GridStride s = grid_stride();
  for (int64_t b = s.first; b < num_blocks; b += s.step)
    write_qparams(ordered_to_float(min_keys[b]), ordered_to_float(max_keys[b]), p, &scale[b], &zp[b]);
}

template <typename T>
void launch_qparams(const at::Tensor& x, c10::IntArrayRef block_size, const core::BlockIndexer& ix,
                    int64_t num_blocks, const QParamsSpec& p, float* scale, float* zp) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const T* in = x.const_data_ptr<T>();
  const int64_t n = x.numel();
  const int64_t run = contiguous_block_numel(x.sizes(), block_size);
  if (run > 0 && (run < kLongRun || num_blocks >= 2 * num_sms())) {
    const bool vec = can_vectorize(in) && (run * sizeof(T)) % 16 == 0;
    if (run <= kWarpRunMax) {
      constexpr int kRunsPerBlock = kBlockThreads / kWarpSize;
      const auto grid = static_cast<unsigned>((num_blocks + kRunsPerBlock - 1) / kRunsPerBlock);
      run_qparams_kernel<T, kWarpSize><<<grid, kBlockThreads, 0, stream>>>(in, num_blocks, run, vec, p, scale, zp);
    } else {
      run_qparams_kernel<T, kBlockThreads>
          <<<static_cast<unsigned>(num_blocks), kBlockThreads, 0, stream>>>(in, num_blocks, run, vec, p, scale, zp);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const at::Tensor keys = at::empty({2, num_blocks}, x.options().dtype(at::kInt));
  auto* min_keys = reinterpret_cast<uint32_t*>(keys.data_ptr<int32_t>());
  uint32_t* max_keys = min_keys + num_blocks;
  init_keys_kernel<<<grid_for(num_blocks), kBlockThreads, 0, stream>>>(min_keys, max_keys, num_blocks);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  with_block_map(x.sizes(), block_size, ix, n, [&](auto blocks) {
    minmax_atomic_kernel<<<grid_for(n / kVecElems<T> + 1), kBlockThreads, 0, stream>>>(in, n, can_vectorize(in),
                                                                                       blocks, min_keys, max_keys);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  qparams_from_keys_kernel<<<grid_for(num_blocks), kBlockThreads, 0, stream>>>(min_keys, max_keys, num_blocks, p,
                                                                               scale, zp);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> choose_qparams_affine_cuda(const at::Tensor& input, at::IntArrayRef block_size,
                                                              c10::string_view qdtype, c10::string_view mapping,
                                                              c10::string_view zero_point_domain,
                                                              std::optional<double> eps,
                                                              std::optional<at::ScalarType> scale_dtype) {
  const ops::AffineArgs args = ops::parse_choose_qparams_args(input, qdtype, mapping, zero_point_domain, eps, scale_dtype);
  const core::QuantRange range = args.range;
  const core::ZeroPointDomain domain = args.domain;
  const bool symmetric = args.symmetric;
  const core::BlockIndexer ix = core::make_block_indexer(input.sizes(), block_size);
  const auto shape = ops::affine_qparams_shape(input.sym_sizes(), block_size);

  const c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor x = input.contiguous();
  at::Tensor scale = at::empty_symint(shape, input.options().dtype(at::kFloat));
  at::Tensor zero_point = at::empty_symint(shape, input.options().dtype(at::kFloat));
  const int64_t num_blocks = scale.numel();
  const QParamsSpec p{range, symmetric, domain,
                      static_cast<float>(eps.value_or(std::numeric_limits<float>::epsilon()))};
  if (num_blocks > 0) {
    visit_float_type</*kWithDouble=*/true>(x.scalar_type(), [&](auto tag) {
      launch_qparams<decltype(tag)>(x, block_size, ix, num_blocks, p, scale.data_ptr<float>(),
                                    zero_point.data_ptr<float>());
    });
  }
  // Computed in float32, converted like the CPU reference does (on the device, no sync).
  return {scale.to(scale_dtype.value_or(at::kFloat)), zero_point.to(ops::zero_point_dtype(domain))};
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("choose_qparams_affine", &choose_qparams_affine_cuda); }

}  // namespace lowbit::cuda
