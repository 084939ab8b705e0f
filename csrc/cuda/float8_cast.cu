// CUDA kernel of lowbit::cast_to_float8. Bit-identical to the CPU reference (csrc/cpu/
// float8_cast.cpp): both take amax over the finite values (core::float8_amax_term) and call
// core/float8_format.h for the scale and the saturating cast. amax and scale never leave the device (no host sync, so
// the op can be captured in a CUDA graph).
//
//   tensor: a grid-wide amax (block reduce + one atomicMax per block) into a device float, then
//           a cast kernel that turns that amax into the scale itself.
//   row:    one warp (short rows) or one block per row: row amax, then the row's cast.
//   column: per-column amax over dim -2 (threads over columns, so loads are coalesced; atomicMax
//           across row chunks), amax -> scale in place, then the cast row by row.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include <lowbit/core/float8_format.h>
#include <lowbit/ops/float8_cast_checks.h>

#include "launch.cuh"
#include "reduce.cuh"

namespace lowbit::cuda {
namespace {

using ops::Float8Granularity;

// Rows up to this length get one warp each; longer rows one block each.
constexpr int64_t kWarpRowMax = 1024;

// |v| when finite, 0 for ±inf and NaN: non-finite values never set the scale.
template <typename T>
__device__ __forceinline__ float abs_float(T v) {
  return core::float8_amax_term(to_float(v));
}

template <typename T>
__global__ void tensor_amax_kernel(const T* x, int64_t n, bool vectorized, float* amax) {
  float m = 0.0f;
  for_each_element(x, n, grid_stride(), vectorized, [&](int64_t, T v) { m = fmaxf(m, abs_float(v)); });
  m = block_reduce(m, MaxOp{}, 0.0f);
  if (threadIdx.x == 0 && m > 0.0f) atomic_max_nonnegative(amax, m);
}

template <typename T, typename Fp8>
__global__ void tensor_cast_kernel(const T* x, Fp8* out, int64_t n, bool vectorized, const float* amax,
                                   float* scale_out, float max_finite, bool power_of_2) {
  const float scale = core::float8_scale_from_amax(*amax, max_finite, power_of_2);
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale_out = scale;
  map_elements(x, out, n, grid_stride(), vectorized, [&](int64_t, T v) {
    return core::cast_scaled_to_float8<Fp8>(to_float(v), scale, max_finite);
  });
}

// kGroup threads (a warp, or the whole block) own one row of `cols` elements.
template <int kGroup>
struct RowGroup {
  static constexpr int kRowsPerBlock = kBlockThreads / kGroup;
  __device__ __forceinline__ static int64_t row() {
    return static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kGroup;
  }
  __device__ __forceinline__ static GridStride lanes() { return {threadIdx.x % kGroup, kGroup}; }
  __device__ __forceinline__ static float max(float v) {
    if constexpr (kGroup == kWarpSize) {
      return warp_reduce(v, MaxOp{});
    } else {
      return block_reduce(v, MaxOp{}, 0.0f);
    }
  }
};

template <typename T, typename Fp8, int kGroup>
__global__ void row_cast_kernel(const T* x, Fp8* out, float* scale_out, int64_t num_rows, int64_t cols,
                                bool vectorized, float max_finite, bool power_of_2) {
  using G = RowGroup<kGroup>;
  const int64_t row = G::row();
  if (row >= num_rows) return;  // whole warps only; the block-per-row grid has no extra rows
  const T* xr = x + row * cols;
  float m = 0.0f;
  for_each_element(xr, cols, G::lanes(), vectorized, [&](int64_t, T v) { m = fmaxf(m, abs_float(v)); });
  const float scale = core::float8_scale_from_amax(G::max(m), max_finite, power_of_2);
  if (threadIdx.x % kGroup == 0) scale_out[row] = scale;
  map_elements(xr, out + row * cols, cols, G::lanes(), vectorized, [&](int64_t, T v) {
    return core::cast_scaled_to_float8<Fp8>(to_float(v), scale, max_finite);
  });
}

// Block of 32 columns x 8 row lanes over one chunk of rows of one batch entry; blockIdx.x
// enumerates (batch, chunk, column tile). Writes amax bits into amax[b * cols + c].
constexpr int kColumnTile = kWarpSize;
constexpr int kRowLanes = kBlockThreads / kColumnTile;

template <typename T>
__global__ void column_amax_kernel(const T* x, float* amax, int64_t rows, int64_t cols, int64_t col_tiles,
                                   int64_t chunks, int64_t chunk_rows) {
  __shared__ float partial[kRowLanes][kColumnTile + 1];
  int64_t t = blockIdx.x;
  const int64_t tile = t % col_tiles;
  t /= col_tiles;
  const int64_t chunk = t % chunks, b = t / chunks;
  const int lane = threadIdx.x % kColumnTile, row_lane = threadIdx.x / kColumnTile;
  const int64_t c = tile * kColumnTile + lane;
  const int64_t r_end = std::min(rows, (chunk + 1) * chunk_rows);
  float m = 0.0f;
  if (c < cols) {
    const T* xb = x + b * rows * cols + c;
    for (int64_t r = chunk * chunk_rows + row_lane; r < r_end; r += kRowLanes) m = fmaxf(m, abs_float(xb[r * cols]));
  }
  partial[row_lane][lane] = m;
  __syncthreads();
  if (row_lane == 0 && c < cols) {
    for (int k = 1; k < kRowLanes; ++k) m = fmaxf(m, partial[k][lane]);
    if (m > 0.0f) atomic_max_nonnegative(&amax[b * cols + c], m);
  }
}

__global__ void amax_to_scale_kernel(float* amax_then_scale, int64_t n, float max_finite, bool power_of_2) {
  const GridStride s = grid_stride();
  for (int64_t i = s.first; i < n; i += s.step)
    amax_then_scale[i] = core::float8_scale_from_amax(amax_then_scale[i], max_finite, power_of_2);
}

// Row by row like row_cast_kernel, each element with its column's scale.
template <typename T, typename Fp8, int kGroup>
__global__ void column_cast_kernel(const T* x, Fp8* out, const float* scale, int64_t num_rows, int64_t rows,
                                   int64_t cols, bool vectorized, float max_finite) {
  using G = RowGroup<kGroup>;
  const int64_t row = G::row();
  if (row >= num_rows) return;
  const float* col_scale = scale + (row / rows) * cols;
  map_elements(x + row * cols, out + row * cols, cols, G::lanes(), vectorized, [&](int64_t c, T v) {
    return core::cast_scaled_to_float8<Fp8>(to_float(v), col_scale[c], max_finite);
  });
}

struct CastArgs {
  int64_t batch, rows, cols;  // (batch, rows, cols) view of the last two dims; tensor: (1, 1, numel)
  float max_finite;
  bool power_of_2;
};

// Grid of a row-group kernel over num_rows rows.
template <int kGroup>
unsigned row_grid(int64_t num_rows) {
  return static_cast<unsigned>((num_rows + RowGroup<kGroup>::kRowsPerBlock - 1) / RowGroup<kGroup>::kRowsPerBlock);
}

template <typename T, typename Fp8>
void launch_tensor(const T* x, Fp8* out, float* scale, const CastArgs& a, cudaStream_t stream,
                   const at::TensorOptions& float_options) {
  const int64_t n = a.cols;
  const bool vec = can_vectorize(x, out);
  const at::Tensor amax = at::zeros({}, float_options);
  if (n > 0) {
    tensor_amax_kernel<<<grid_for(n / kVecElems<T> + 1), kBlockThreads, 0, stream>>>(x, n, vec,
                                                                                      amax.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  // Launched even for n == 0: its first thread writes the scale.
  tensor_cast_kernel<<<grid_for(n / kVecElems<T> + 1), kBlockThreads, 0, stream>>>(
      x, out, n, vec, amax.data_ptr<float>(), scale, a.max_finite, a.power_of_2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename Fp8>
void launch_row(const T* x, Fp8* out, float* scale, const CastArgs& a, cudaStream_t stream) {
  const int64_t num_rows = a.batch * a.rows;
  if (num_rows == 0) return;
  const bool vec = can_vectorize(x, out) && (a.cols * sizeof(T)) % 16 == 0;
  if (a.cols <= kWarpRowMax) {
    row_cast_kernel<T, Fp8, kWarpSize><<<row_grid<kWarpSize>(num_rows), kBlockThreads, 0, stream>>>(
        x, out, scale, num_rows, a.cols, vec, a.max_finite, a.power_of_2);
  } else {
    row_cast_kernel<T, Fp8, kBlockThreads><<<row_grid<kBlockThreads>(num_rows), kBlockThreads, 0, stream>>>(
        x, out, scale, num_rows, a.cols, vec, a.max_finite, a.power_of_2);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename Fp8>
void launch_column(const T* x, Fp8* out, float* scale, const CastArgs& a, cudaStream_t stream) {
  const int64_t num_scales = a.batch * a.cols;
  if (num_scales == 0) return;
  // `scale` is zero-filled by the caller and first holds the amax bits.
  if (a.rows > 0) {
    const int64_t col_tiles = (a.cols + kColumnTile - 1) / kColumnTile;
    // Split the rows into chunks until the grid fills the GPU (about 8 blocks per SM).
    const int64_t wanted = static_cast<int64_t>(num_sms()) * 8;
    const int64_t max_chunks = (a.rows + kRowLanes - 1) / kRowLanes;
    const int64_t chunks0 = std::min(max_chunks, std::max<int64_t>(1, wanted / (a.batch * col_tiles)));
    const int64_t chunk_rows = (a.rows + chunks0 - 1) / chunks0;
    const int64_t chunks = (a.rows + chunk_rows - 1) / chunk_rows;
    const int64_t blocks = a.batch * chunks * col_tiles;
    TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), "cast_to_float8: input too large for the CUDA kernel");
    column_amax_kernel<<<static_cast<unsigned>(blocks), kBlockThreads, 0, stream>>>(x, scale, a.rows, a.cols,
                                                                                   col_tiles, chunks, chunk_rows);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  amax_to_scale_kernel<<<grid_for(num_scales), kBlockThreads, 0, stream>>>(scale, num_scales, a.max_finite,
                                                                           a.power_of_2);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t num_rows = a.batch * a.rows;
  if (num_rows == 0) return;
  const bool vec = can_vectorize(x, out) && (a.cols * sizeof(T)) % 16 == 0;
  if (a.cols <= kWarpRowMax) {
    column_cast_kernel<T, Fp8, kWarpSize><<<row_grid<kWarpSize>(num_rows), kBlockThreads, 0, stream>>>(
        x, out, scale, num_rows, a.rows, a.cols, vec, a.max_finite);
  } else {
    column_cast_kernel<T, Fp8, kBlockThreads><<<row_grid<kBlockThreads>(num_rows), kBlockThreads, 0, stream>>>(
        x, out, scale, num_rows, a.rows, a.cols, vec, a.max_finite);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename Fp8>
void launch_cast(const T* x, Fp8* out, const at::Tensor& scale, Float8Granularity g, const CastArgs& a,
                 cudaStream_t stream) {
  float* s = scale.data_ptr<float>();
  switch (g) {
    case Float8Granularity::Tensor: launch_tensor(x, out, s, a, stream, scale.options()); break;
    case Float8Granularity::Row: launch_row(x, out, s, a, stream); break;
    case Float8Granularity::Column: launch_column(x, out, s, a, stream); break;
  }
}

std::tuple<at::Tensor, at::Tensor> cast_to_float8_cuda(const at::Tensor& x, at::ScalarType dtype,
                                                       c10::string_view granularity, bool power_of_2_scale) {
  const Float8Granularity g = ops::check_cast_to_float8_args(x, dtype, granularity);
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor xc = x.contiguous();
  at::Tensor data = at::empty(x.sizes(), x.options().dtype(dtype));
  const auto scale_shape = ops::float8_scale_shape(x.sym_sizes(), g);
  // The column path accumulates amax in the scale tensor itself, so it starts at zero.
  at::Tensor scale = g == Float8Granularity::Column
                         ? at::zeros_symint(scale_shape, x.options().dtype(at::kFloat))
                         : at::empty_symint(scale_shape, x.options().dtype(at::kFloat));
  CastArgs a{1, 1, xc.numel(), core::float8_max_finite(dtype), power_of_2_scale};
  if (g != Float8Granularity::Tensor) {
    // The product of the leading dims, not numel / (rows * cols): that is 0 / 0 for empty rows.
    a.batch = c10::multiply_integers(x.sizes().begin(), x.sizes().end() - 2);
    a.rows = x.size(-2);
    a.cols = x.size(-1);
  }
  visit_float_type(xc.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    if (dtype == at::kFloat8_e4m3fn) {
      launch_cast(xc.const_data_ptr<T>(), data.data_ptr<c10::Float8_e4m3fn>(), scale, g, a, stream);
    } else {
      launch_cast(xc.const_data_ptr<T>(), data.data_ptr<c10::Float8_e5m2>(), scale, g, a, stream);
    }
  });
  return {data, scale};
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("cast_to_float8", &cast_to_float8_cuda); }

}  // namespace lowbit::cuda
