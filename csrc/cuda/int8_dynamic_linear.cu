// CUDA kernels of int8_dynamic_activation_int8_linear: per-token symmetric int8 activations
// times per-channel int8 weights, int32 accumulation, one rescale. x is flattened to (M, K), the
// weight is int8 (N, K). Three steps:
//   quantize  one block per row of x: min and max (a block reduction), then the row's scale by
//             core::affine_qparams_from_min_max and its codes by core::affine_quantize_value: the
//             functions of lowbit::choose_qparams_affine / quantize_affine ("int8", "symmetric").
//   GEMM      at::_int_mm (cuBLAS int8 -> int32) where cuBLAS takes the shape (M > 16, K and N
//             multiples of 8, K > 0), followed by the epilogue kernel. Otherwise (decode-time
//             M <= 16, odd K or N) a dp4a kernel: a block owns 4 output columns and up to 8 rows,
//             streams the int8 rows 16 bytes at a time and runs the epilogue itself.
//   epilogue  y = T(float(acc) * act_scale[m] * w_scale[n] + bias[n]), each float32 step rounded
//             on its own, as the reference's acc.to(float).mul_(..).mul_(..).add_(..).to(T).
// The result equals the CPU reference bit for bit: the same codes and scales, exact int32 sums
// in any order (|sum| <= K * 128^2 fits int32 for K < 131072), the same float32 epilogue.
#include <ATen/core/Tensor.h>
#include <ATen/ops/_int_mm.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <math.h>
#include <optional>
#include <type_traits>

#include <lowbit/core/affine_quant.h>
#include <lowbit/core/kernel_path.h>
#include <lowbit/ops/quantized_linear_checks.h>

#include "launch.cuh"
#include "quantized_linear_paths.h"
#include "reduce.cuh"

namespace lowbit::cuda {
namespace {

using OptTensor = std::optional<at::Tensor>;

constexpr core::QuantRange kInt8{8, true, -128, 127};

// Row m of x -> its int8 codes and scale. Every thread gets the row's min / max from the block
// reduction and computes the same scale; thread 0 stores it.
template <typename T>
__global__ void quantize_rows_kernel(const T* __restrict__ x, int64_t K, bool vectorized, float eps,
                                     int8_t* __restrict__ xq, float* __restrict__ scale) {
  const int64_t m = blockIdx.x;
  const T* row = x + m * K;
  const GridStride lanes{threadIdx.x, blockDim.x};
  float mn = INFINITY, mx = -INFINITY;
  for_each_element(row, K, lanes, vectorized, [&](int64_t, T v) {
    const float f = to_float(v);
    mn = fminf(mn, core::affine_min_term(f));  // finite values only; a NaN makes mx NaN,
    mx = core::max_propagating_nan(mx, core::affine_max_term(f));  // so the row's scale is NaN
  });
  mn = block_reduce(mn, MinOp{}, INFINITY);
  mx = block_reduce(mx, MaxNanOp{}, -INFINITY);
  float s, zp;
  core::affine_qparams_from_min_max(mn, mx, kInt8, /*symmetric=*/true, core::ZeroPointDomain::Int, eps, &s, &zp);
  if (threadIdx.x == 0) scale[m] = s;
  map_elements(row, xq + m * K, K, lanes, vectorized, [&](int64_t, T v) {
    return static_cast<int8_t>(core::affine_quantize_value(to_float(v), s, zp, kInt8, core::ZeroPointDomain::Int));
  });
}

// The reference's float32 rescale of one int32 sum.
template <typename T>
__device__ __forceinline__ T rescale(int32_t acc, float act_scale, float w_scale, const float* bias, int64_t n) {
  float r = core::mul_rn(core::mul_rn(static_cast<float>(acc), act_scale), w_scale);
  if (bias != nullptr) r = r + bias[n];
  return static_cast<T>(r);
}

// After at::_int_mm: y = rescale(acc) elementwise over (M, N).
template <typename T>
__global__ void rescale_kernel(const int32_t* __restrict__ acc, const float* __restrict__ act_scale,
                               const float* __restrict__ w_scale, const float* __restrict__ bias, int64_t M, int64_t N,
                               T* __restrict__ y) {
  const GridStride g = grid_stride();
  for (int64_t i = g.first; i < M * N; i += g.step) {
    const int64_t m = i / N, n = i % N;
    y[i] = rescale<T>(acc[i], act_scale[m], w_scale[n], bias, n);
  }
}

constexpr int kDotThreads = 128;
constexpr int kDotCols = 4;  // output columns per block: each activation load serves 4 weight rows

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// int32 dot products of kMT activation rows with the block's kDotCols weight rows, then the
// epilogue. `vectorized`: K % 16 == 0 and both bases 16-byte aligned, so 16 codes move per load
// and go through four dp4a; otherwise one code at a time. Rows >= M and columns >= N read clamped
// (valid) addresses and are not written. The grid's y dimension strides over row tiles.
template <typename T, int kMT>
__global__ void __launch_bounds__(kDotThreads)
    int8_dot_kernel(const int8_t* __restrict__ xq, const float* __restrict__ act_scale, int64_t M, int64_t K,
                    const int8_t* __restrict__ w, const float* __restrict__ w_scale, int64_t N,
                    const float* __restrict__ bias, bool vectorized, T* __restrict__ y) {
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kDotCols;
  int64_t cols[kDotCols];
#pragma unroll
  for (int i = 0; i < kDotCols; ++i) cols[i] = min64(n0 + i, N - 1);
  __shared__ int32_t partial[kDotThreads / kWarpSize][kDotCols * kMT];

  for (int64_t m0 = static_cast<int64_t>(blockIdx.y) * kMT; m0 < M; m0 += static_cast<int64_t>(gridDim.y) * kMT) {
    int64_t rows[kMT];
#pragma unroll
    for (int m = 0; m < kMT; ++m) rows[m] = min64(m0 + m, M - 1);
    int32_t acc[kDotCols][kMT];
#pragma unroll
    for (int i = 0; i < kDotCols; ++i)
#pragma unroll
      for (int m = 0; m < kMT; ++m) acc[i][m] = 0;

    if (vectorized) {
      const int64_t vecs = K / 16;
      const auto* wv = reinterpret_cast<const int4*>(w);
      const auto* xv = reinterpret_cast<const int4*>(xq);
      for (int64_t c = threadIdx.x; c < vecs; c += kDotThreads) {
        int4 a[kMT], b[kDotCols];
#pragma unroll
        for (int m = 0; m < kMT; ++m) a[m] = xv[rows[m] * vecs + c];
#pragma unroll
        for (int i = 0; i < kDotCols; ++i) b[i] = wv[cols[i] * vecs + c];
#pragma unroll
        for (int i = 0; i < kDotCols; ++i)
#pragma unroll
          for (int m = 0; m < kMT; ++m) {
            int32_t s = acc[i][m];
            s = __dp4a(a[m].x, b[i].x, s);
            s = __dp4a(a[m].y, b[i].y, s);
            s = __dp4a(a[m].z, b[i].z, s);
            acc[i][m] = __dp4a(a[m].w, b[i].w, s);
          }
      }
    } else {
      for (int64_t k = threadIdx.x; k < K; k += kDotThreads) {
#pragma unroll
        for (int i = 0; i < kDotCols; ++i)
#pragma unroll
          for (int m = 0; m < kMT; ++m) acc[i][m] += int32_t(xq[rows[m] * K + k]) * int32_t(w[cols[i] * K + k]);
      }
    }

    // Block reduction (integer: exact in any order), then the epilogue of each (row, column).
    const int32_t sum = block_sum_tile<kDotThreads>(acc, partial);
    if (threadIdx.x < kDotCols * kMT) {
      const int i = threadIdx.x / kMT, m = threadIdx.x % kMT;
      const int64_t n = n0 + i, row = m0 + m;
      if (n < N && row < M) y[row * N + n] = rescale<T>(sum, act_scale[row], w_scale[n], bias, n);
    }
    __syncthreads();  // partial is reused by the next row tile
  }
}

at::Tensor int8_dynamic_activation_int8_linear_cuda(const at::Tensor& input, const at::Tensor& weight,
                                                    const at::Tensor& weight_scale, const OptTensor& bias) {
  const char* op = "int8_dynamic_activation_int8_linear";
  const ops::QLinearDims d = ops::check_int8_weight(weight, weight_scale, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  for (const at::Tensor* t : {&weight, &weight_scale})
    TORCH_CHECK(t->device() == input.device(), op, ": all tensors must be on the input's device ", input.device(),
                ", got one on ", t->device());
  TORCH_CHECK(!bias.has_value() || bias->device() == input.device(), op, ": bias is on ", bias->device(),
              ", the input on ", input.device());
  const c10::cuda::CUDAGuard guard(input.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();

  const int64_t K = d.k.expect_int(), N = d.n.expect_int();
  const at::Tensor x = input.reshape({-1, K}).contiguous();
  const int64_t M = x.size(0);
  const at::ScalarType dtype = input.scalar_type();
  at::Tensor y = at::empty({M, N}, x.options());
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = N;
  const Int8DynamicPath path = choose_int8_dynamic_path(M, K, N);  // quantized_linear_paths.h
  core::record_kernel_path(path == Int8DynamicPath::Empty   ? core::KernelPath::Int8DynamicEmpty
                           : path == Int8DynamicPath::IntMm ? core::KernelPath::Int8DynamicIntMm
                                                            : core::KernelPath::Int8DynamicDp4a);
  if (path == Int8DynamicPath::Empty) return y.reshape(shape);

  const at::Tensor w = weight.contiguous();
  const at::Tensor w_scale = weight_scale.reshape({-1}).contiguous();
  // The reference adds bias.to(float) before the cast to the output dtype.
  const at::Tensor b = bias.has_value() ? bias->to(at::kFloat).contiguous() : at::Tensor();
  const float* b_ptr = b.defined() ? b.const_data_ptr<float>() : nullptr;

  at::Tensor xq = at::empty({M, K}, x.options().dtype(at::kChar));
  at::Tensor act_scale = at::empty({M}, x.options().dtype(at::kFloat));
  visit_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.const_data_ptr<T>();
    // Vector loads need every row 16-byte aligned (and the int8 rows aligned to the store packs).
    const bool vectorized = is_aligned(xp, 16) && (K * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    quantize_rows_kernel<T><<<static_cast<unsigned>(M), kBlockThreads, 0, stream>>>(
        xp, K, vectorized, std::numeric_limits<float>::epsilon(), xq.data_ptr<int8_t>(), act_scale.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });

  const bool cublas_ok = path == Int8DynamicPath::IntMm;
  visit_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (cublas_ok) {
      const at::Tensor acc = at::_int_mm(xq, w.t()).contiguous();
      rescale_kernel<T><<<grid_for(M * N), kBlockThreads, 0, stream>>>(
          acc.const_data_ptr<int32_t>(), act_scale.const_data_ptr<float>(), w_scale.const_data_ptr<float>(), b_ptr, M,
          N, y.data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    const bool vectorized = K % 16 == 0 && is_aligned(w.const_data_ptr(), 16) && is_aligned(xq.const_data_ptr(), 16);
    visit_row_tile(M, [&](auto rows) {
      constexpr int kMT = decltype(rows)::value;
      const int64_t row_tiles = std::min<int64_t>((M + kMT - 1) / kMT, 65535);
      const dim3 grid(static_cast<unsigned>((N + kDotCols - 1) / kDotCols), static_cast<unsigned>(row_tiles));
      int8_dot_kernel<T, kMT><<<grid, kDotThreads, 0, stream>>>(
          xq.const_data_ptr<int8_t>(), act_scale.const_data_ptr<float>(), M, K, w.const_data_ptr<int8_t>(),
          w_scale.const_data_ptr<float>(), N, b_ptr, vectorized, y.data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return y.reshape(shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("int8_dynamic_activation_int8_linear", &int8_dynamic_activation_int8_linear_cuda);
}

}  // namespace lowbit::cuda
