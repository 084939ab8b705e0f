// Weight-only linear, path "wmma" (8 < M <= 256, bf16 / fp16): the fused dequantize tensor-core
// GEMM with split-K. See weight_only_linear.cu.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAStream.h>
#include <mma.h>

#include <algorithm>

#include "weight_only_decode.cuh"

namespace lowbit::cuda::weight_only {
namespace {

constexpr int kBM = 64, kBN = 128, kBK = 64;
constexpr int kGemmThreads = 256;  // 8 warps as 2 (M) x 4 (N), each a 32 x 32 tile of 2 x 2 fragments
constexpr int kLd = kBK + 8;       // smem row stride of the A and B tiles: 144 bytes, so 16-byte
                                   // stores of consecutive rows hit distinct banks
constexpr int kLdC = kBN + 4;      // float row stride of the output staging tile
constexpr int kTileBytes = (kBM + kBN) * kLd * 2;
constexpr int kStageBytes = kBM * kLdC * 4;
constexpr int kGemmSmemBytes = kTileBytes > kStageBytes ? kTileBytes : kStageBytes;

template <typename T>
using MmaType = std::conditional_t<std::is_same_v<T, c10::BFloat16>, __nv_bfloat16, __half>;

// What one thread loads from global memory for one K step: two 8-element vectors of the x tile
// and one chunk (32 codes) of one packed row, with that chunk's decoder.
template <Fmt F, int kBits>
struct TileLoad {
  uint4 a[2];
  uint32_t words[kBits];
  Decoder<F> dec;
  bool b_valid;
};

// y (or a split's float32 partial sums) for one 64 x 128 tile over K steps [kt0, kt1).
// Global loads of step t + 1 go out before the tensor-core work of step t (register staging).
template <typename T, Fmt F, int kBits>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_kernel(const T* __restrict__ x, int64_t M, int64_t K, const uint32_t* __restrict__ w, int64_t N,
                FormatArgs fa, Epilogue<T> ep, int64_t steps_per_split, T* __restrict__ y,
                float* __restrict__ partial) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 / fp16 WMMA needs sm_80; the host never picks this path there
#else
  namespace wmma = nvcuda::wmma;
  using MT = MmaType<T>;
  __shared__ __align__(128) unsigned char smem[kGemmSmemBytes];
  uint16_t* a_tile = reinterpret_cast<uint16_t*>(smem);  // [kBM][kLd] of T
  uint16_t* b_tile = a_tile + kBM * kLd;                  // [kBN][kLd] of T: row n holds W[n, k-step]
  float* c_tile = reinterpret_cast<float*>(smem);         // [kBM][kLdC], after the last step

  constexpr int kTable = F == Fmt::Fpx ? 1 << kBits : 1;
  __shared__ float table[kTable];
  if constexpr (F == Fmt::Fpx) {
    for (int i = threadIdx.x; i < kTable; i += kGemmThreads)
      table[i] = core::fpx_decode_value(static_cast<uint8_t>(i), fa.ebits, fa.mbits);
    __syncthreads();
  }

  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t steps = (K + kBK - 1) / kBK;
  const int64_t kt0 = blockIdx.z * steps_per_split;
  const int64_t kt1 = min64(steps, kt0 + steps_per_split);
  const int64_t chunks = K / kChunk, row_words = chunks * kBits;
  const int tid = threadIdx.x;
  const int b_row = tid / 2, b_half = tid % 2;  // this thread's chunk of the B tile
  const int64_t n = n0 + b_row;

  auto load = [&](int64_t kt, TileLoad<F, kBits>& r) {
    const int64_t k0 = kt * kBK;
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const int v = tid + q * kGemmThreads, row = v / 8, col = (v % 8) * 8;
      const int64_t m = m0 + row, k = k0 + col;
      r.a[q] = m < M && k < K ? *reinterpret_cast<const uint4*>(x + m * K + k) : make_uint4(0, 0, 0, 0);
    }
    const int64_t c = k0 / kChunk + b_half;
    r.b_valid = n < N && c < chunks;
    if (r.b_valid) {
      load_chunk<kBits>(w + n * row_words + c * kBits, r.words);
      r.dec.setup(fa, n, c, table);
    }
  };
  // Writes the staged step into shared memory, decoding the weights to T on the way.
  auto store = [&](const TileLoad<F, kBits>& r) {
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const int v = tid + q * kGemmThreads, row = v / 8, col = (v % 8) * 8;
      *reinterpret_cast<uint4*>(a_tile + row * kLd + col) = r.a[q];
    }
    uint4* dst = reinterpret_cast<uint4*>(b_tile + b_row * kLd + b_half * kChunk);
#pragma unroll
    for (int s = 0; s < kChunk / 8; ++s) {
      uint32_t packed[4] = {0, 0, 0, 0};
      if (r.b_valid) {
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
          float w0 = r.dec(core::chunk_code(r.words, kBits, 8 * s + j));
          float w1 = r.dec(core::chunk_code(r.words, kBits, 8 * s + j + 1));
          packed[j / 2] = round_pair<T>(w0, w1);  // exact for int8, the reference's rounding otherwise
        }
      }
      dst[s] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    }
  };

  const int warp = tid / kWarpSize, wm = warp / 4, wn = warp % 4;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  TileLoad<F, kBits> staged;
  if (kt0 < kt1) load(kt0, staged);
  for (int64_t kt = kt0; kt < kt1; ++kt) {
    __syncthreads();  // the previous step's fragments are loaded
    store(staged);
    __syncthreads();
    if (kt + 1 < kt1) load(kt + 1, staged);
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, MT, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, MT, wmma::col_major> b[2];  // B(k, n) = b_tile[n][k]
#pragma unroll
      for (int i = 0; i < 2; ++i)
        wmma::load_matrix_sync(a[i], reinterpret_cast<const MT*>(a_tile + (wm * 32 + i * 16) * kLd + kk), kLd);
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::load_matrix_sync(b[j], reinterpret_cast<const MT*>(b_tile + (wn * 32 + j * 16) * kLd + kk), kLd);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }

  __syncthreads();  // the staging tile overlays the A / B tiles
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(c_tile + (wm * 32 + i * 16) * kLdC + wn * 32 + j * 16, acc[i][j], kLdC,
                              wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < kBM * kBN; e += kGemmThreads) {
    const int r = e / kBN, col = e % kBN;
    const int64_t m = m0 + r, nn = n0 + col;
    if (m >= M || nn >= N) continue;
    const float v = c_tile[r * kLdC + col];
    if (partial != nullptr) {
      partial[(blockIdx.z * M + m) * N + nn] = v;
    } else {
      y[m * N + nn] = ep(v, nn);
    }
  }
#endif
}

// y[m, n] = epilogue(sum over splits of partial[s, m, n]), the splits added in order.
template <typename T>
__global__ void split_k_epilogue_kernel(const float* __restrict__ partial, int64_t splits, int64_t M, int64_t N,
                                        Epilogue<T> ep, T* __restrict__ y) {
  const GridStride g = grid_stride();
  for (int64_t i = g.first; i < M * N; i += g.step) {
    float sum = 0.0f;
    for (int64_t s = 0; s < splits; ++s) sum += partial[s * M * N + i];
    y[i] = ep(sum, i % N);
  }
}

template <typename T, Fmt F>
void launch(const Problem& p, at::Tensor& y) {
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t tiles_n = (p.n + kBN - 1) / kBN, tiles_m = (p.m + kBM - 1) / kBM;
  const int64_t steps = (p.k + kBK - 1) / kBK;
  // Split K when the output tiles alone cannot fill the GPU (about two blocks per SM), keeping at
  // least 4 K steps per split.
  int64_t splits = 1;
  const int64_t wanted = 2 * static_cast<int64_t>(num_sms());
  if (tiles_n * tiles_m < wanted) {
    splits = std::min<int64_t>({(wanted + tiles_n * tiles_m - 1) / (tiles_n * tiles_m), steps / 4, 16});
    splits = std::max<int64_t>(splits, 1);
  }
  const int64_t per_split = std::max<int64_t>(1, (steps + splits - 1) / splits);
  splits = std::max<int64_t>(1, (steps + per_split - 1) / per_split);
  at::Tensor partial;
  if (splits > 1) partial = at::empty({splits, p.m, p.n}, p.x.options().dtype(at::kFloat));
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m), static_cast<unsigned>(splits));
  const auto* w = static_cast<const uint32_t*>(p.packed.const_data_ptr());
  const Epilogue<T> ep = make_epilogue<T>(p);
  visit_bits<F>(p.bits, [&](auto bits) {
    gemm_kernel<T, F, decltype(bits)::value><<<grid, kGemmThreads, 0, stream>>>(
        p.x.const_data_ptr<T>(), p.m, p.k, w, p.n, p.fa, ep, per_split, y.data_ptr<T>(),
        splits > 1 ? partial.data_ptr<float>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  if (splits > 1) {
    split_k_epilogue_kernel<T><<<grid_for(p.m * p.n), kBlockThreads, 0, stream>>>(
        partial.const_data_ptr<float>(), splits, p.m, p.n, ep, y.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}


}  // namespace

void launch_wmma_gemm(const Problem& p, Fmt f, at::Tensor& y) {
  const at::ScalarType dtype = p.x.scalar_type();
  TORCH_CHECK(dtype == at::kBFloat16 || dtype == at::kHalf, "weight-only WMMA GEMM: bf16 / fp16 input, got ", dtype);
  auto by_format = [&](auto tag) {
    using T = decltype(tag);
    switch (f) {
      case Fmt::Int8: launch<T, Fmt::Int8>(p, y); break;
      case Fmt::Uintx: launch<T, Fmt::Uintx>(p, y); break;
      case Fmt::Fpx: launch<T, Fmt::Fpx>(p, y); break;
    }
  };
  if (dtype == at::kBFloat16) {
    by_format(c10::BFloat16());
  } else {
    by_format(c10::Half());
  }
}

}  // namespace lowbit::cuda::weight_only
