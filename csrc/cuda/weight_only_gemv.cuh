// Weight-only linear, path "gemv" (M <= 8): the fused dequantize GEMV. See weight_only_linear.cu.
// One template for the three formats; weight_only_gemv_{int8,uintx,fpx}.cu each instantiate one
// (about 100 kernels for uintx and fpx: one file each lets a full build compile them in parallel).
#pragma once

#include <c10/cuda/CUDAStream.h>

#include "reduce.cuh"
#include "weight_only_decode.cuh"

namespace lowbit::cuda::weight_only {

constexpr int kGemvThreads = 128;
constexpr int kGemvCols = 4;  // output columns per block: each x load serves 4 packed rows

// y[m, n] for m < M <= kMT and the block's kGemvCols columns. Thread t takes chunks t, t + 128, ...
// of the four rows; rows m >= M and columns n >= N read clamped (valid) addresses and are not written.
template <typename T, Fmt F, int kBits, int kMT>
__global__ void __launch_bounds__(kGemvThreads)
    gemv_kernel(const T* __restrict__ x, int64_t M, int64_t K, const uint32_t* __restrict__ w, int64_t N,
                FormatArgs fa, Epilogue<T> ep, T* __restrict__ y) {
  using Dec = std::conditional_t<F == Fmt::Fpx, FpxColumnDecoder, Decoder<F>>;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kGemvCols;
  const int64_t chunks = K / kChunk;
  const int64_t row_words = chunks * kBits;
  int64_t rows[kGemvCols];
#pragma unroll
  for (int i = 0; i < kGemvCols; ++i) rows[i] = min64(n0 + i, N - 1);

  // fpx: each column's weight for every code, rounded to T like the reference's dequantized weight.
  constexpr int kTable = F == Fmt::Fpx ? kGemvCols << kBits : 1;
  __shared__ float table[kTable];
  if constexpr (F == Fmt::Fpx) {
    for (int i = threadIdx.x; i < kTable; i += kGemvThreads) {
      const uint8_t code = static_cast<uint8_t>(i & ((1 << kBits) - 1));
      const float scale = fa.scale[min64(n0 + (i >> kBits), N - 1)];
      table[i] = round_to<T>(core::mul_rn(core::fpx_decode_value(code, fa.ebits, fa.mbits), scale));
    }
    __syncthreads();
  }

  float acc[kGemvCols][kMT];
#pragma unroll
  for (int i = 0; i < kGemvCols; ++i)
#pragma unroll
    for (int m = 0; m < kMT; ++m) acc[i][m] = 0.0f;

  for (int64_t c = threadIdx.x; c < chunks; c += kGemvThreads) {
    uint32_t words[kGemvCols][kBits];
    Dec dec[kGemvCols];
#pragma unroll
    for (int i = 0; i < kGemvCols; ++i) {
      load_chunk<kBits>(w + rows[i] * row_words + c * kBits, words[i]);
      if constexpr (F == Fmt::Fpx) {
        dec[i].table = table + (i << kBits);
      } else {
        dec[i].setup(fa, rows[i], c, nullptr);
      }
    }
#pragma unroll
    for (int s = 0; s < kChunk / 8; ++s) {  // 8 codes at a time keeps x's registers at 8 * kMT
      float xv[kMT][8];
#pragma unroll
      for (int m = 0; m < kMT; ++m) load_x8(x + min64(m, M - 1) * K + c * kChunk + s * 8, xv[m]);
#pragma unroll
      for (int i = 0; i < kGemvCols; ++i) {
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
          float w0 = dec[i](core::chunk_code(words[i], kBits, 8 * s + j));
          float w1 = dec[i](core::chunk_code(words[i], kBits, 8 * s + j + 1));
          if constexpr (!Dec::kInDtype) round_pair<T>(w0, w1);
#pragma unroll
          for (int m = 0; m < kMT; ++m) acc[i][m] = fmaf(w1, xv[m][j + 1], fmaf(w0, xv[m][j], acc[i][m]));
        }
      }
    }
  }

  // Block reduction (fixed order), then the epilogue of each (row, column).
  __shared__ float partial[kGemvThreads / kWarpSize][kGemvCols * kMT];
  const float sum = block_sum_tile<kGemvThreads>(acc, partial);
  if (threadIdx.x < kGemvCols * kMT) {
    const int i = threadIdx.x / kMT, m = threadIdx.x % kMT;
    const int64_t n = n0 + i;
    if (n < N && m < M) y[m * N + n] = ep(sum, n);
  }
}

template <typename T, Fmt F>
void launch_gemv_typed(const Problem& p, at::Tensor& y) {
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const unsigned blocks = static_cast<unsigned>((p.n + kGemvCols - 1) / kGemvCols);
  const auto* w = static_cast<const uint32_t*>(p.packed.const_data_ptr());
  visit_bits<F>(p.bits, [&](auto bits) {
    visit_row_tile(p.m, [&](auto rows) {
      gemv_kernel<T, F, decltype(bits)::value, decltype(rows)::value><<<blocks, kGemvThreads, 0, stream>>>(
          p.x.const_data_ptr<T>(), p.m, p.k, w, p.n, p.fa, make_epilogue<T>(p), y.data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

template <Fmt F>
void launch_gemv_for(const Problem& p, at::Tensor& y) {
  visit_float_type(p.x.scalar_type(), [&](auto tag) { launch_gemv_typed<decltype(tag), F>(p, y); });
}

}  // namespace lowbit::cuda::weight_only
