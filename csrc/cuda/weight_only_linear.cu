// CUDA kernels of the weight-only quantized linears: int8_weight_only_linear,
// uintx_weight_only_linear and fpx_weight_only_linear, y = x @ dequant(W)^T (+ bias), with the
// weight decoded on the fly instead of materialized. One templated design serves the three
// formats; they differ only in how a code becomes a weight (the Decoder structs) and in the
// epilogue (int8 scales output columns, as its reference does).
//
// Paths (x flattened to (M, K); W is (N, K) logically):
//   gemv     M <= 8, chunked shapes (below), any input dtype: a block owns 4 output columns;
//            each thread streams 32-code chunks of those 4 packed rows as `bits` aligned 32-bit
//            words, decodes them with shifts (core::chunk_code) and multiplies with x in float32
//            registers; a block reduction and the epilogue finish each column. Every weight byte
//            is read once. fpx looks its weights up in per-column tables of all 2^bits values.
//   gemm     8 < M <= 256, bf16 / fp16 input, chunked shapes: 64 x 128 output tiles; per 64-wide
//            K step the block decodes its 128 packed rows into shared memory as bf16 / fp16 and
//            multiplies them with the x tile on tensor cores (WMMA 16x16x16, float32 accumulators).
//            Few tiles (small M) split K across blocks into a float32 workspace, summed in order
//            by a second kernel that runs the epilogue.
//   fallback everything else (float32 input with M > 8, M > 256, unchunked shapes): a kernel
//            dequantizes W into the input dtype, then at::linear (cuBLAS), then the reference's
//            own epilogue ops. Unchunked shapes at M <= 256 warn once (a performance cliff the
//            user can avoid). The cut at M = 256 (kFusedGemmMaxM) is an estimate, not a
//            measurement: past it the GEMM is compute-bound, cuBLAS beats this WMMA kernel, and
//            the fused kernel's decode, repeated for every 64-row tile, costs more than writing the
//            dequantized weight once. benchmarks/bench_quantize.py times both sides of it.
//   Chunked: K % 32 == 0 (a packed row is whole words: 32 codes are `bits` words), the packed
//   weight contiguous and 16-byte aligned, and for uintx group_size % 32 == 0 (one scale and
//   zero point per chunk).
//
// Numerics, against the CPU reference (csrc/cpu/quantized_linear_reference.cpp): every weight
// the kernels multiply is the reference's dequantized weight bit for bit (int8: the code itself,
// exact in any dtype; uintx: (float(q) - zp) * scale, fpx: fpx_decode(q) * scale, each in float32
// and rounded once to the input dtype). Products accumulate in float32 in a different order than
// the CPU GEMM, and the epilogue repeats the reference's roundings: the GEMM result rounded to the
// input dtype, then (int8) times scale.to(dtype) rounded, then + bias.to(dtype) rounded. So a
// one-hot x reproduces the reference exactly, and otherwise the difference is the float32
// summation order plus one rounding of the output.
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContextLight.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <type_traits>

#include <lowbit/core/affine_quant.h>
#include <lowbit/core/bitstream.h>
#include <lowbit/core/fpx_format.h>
#include <lowbit/ops/quantized_linear_checks.h>

#include "launch.cuh"
#include "reduce.cuh"

namespace lowbit::cuda {
namespace {

using OptTensor = std::optional<at::Tensor>;

enum class Fmt { Int8, Uintx, Fpx };

constexpr int kChunk = 32;  // codes per chunk; a chunk is `bits` 32-bit words

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- dtype helpers ----------------------------------------------------------------------------

// v rounded to T and back to float32 (what .to(T) does to a float32 value).
template <typename T>
__device__ __forceinline__ float round_to(float v) {
  if constexpr (std::is_same_v<T, c10::BFloat16>) {
    return __bfloat162float(__float2bfloat16_rn(v));
  } else if constexpr (std::is_same_v<T, c10::Half>) {
    return __half2float(__float2half_rn(v));
  } else {
    return v;
  }
}

// Rounds a pair to T with one packed conversion (cheaper than two scalar ones) and returns the
// pair's 32 bits (for T = float: unused).
template <typename T>
__device__ __forceinline__ uint32_t round_pair(float& a, float& b) {
  if constexpr (std::is_same_v<T, c10::BFloat16>) {
    const __nv_bfloat162 p = __floats2bfloat162_rn(a, b);
    a = __low2float(p);
    b = __high2float(p);
    return *reinterpret_cast<const uint32_t*>(&p);
  } else if constexpr (std::is_same_v<T, c10::Half>) {
    const __half2 p = __floats2half2_rn(a, b);
    a = __low2float(p);
    b = __high2float(p);
    return *reinterpret_cast<const uint32_t*>(&p);
  } else {
    return 0;
  }
}

// Eight consecutive elements of x (16-byte aligned) as float32, exactly.
template <typename T>
__device__ __forceinline__ void load_x8(const T* p, float (&out)[8]) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
  } else {
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (std::is_same_v<T, c10::BFloat16>) {
        out[2 * i] = __uint_as_float(u[i] << 16);
        out[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
      } else {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
      }
    }
  }
}

// The `kBits` words of one chunk, with the widest loads its size allows (a chunk starts at a
// multiple of 4 * kBits bytes, so 16-byte loads when kBits % 4 == 0, 8-byte when even).
template <int kBits>
__device__ __forceinline__ void load_chunk(const uint32_t* __restrict__ p, uint32_t (&w)[kBits]) {
  if constexpr (kBits % 4 == 0) {
#pragma unroll
    for (int q = 0; q < kBits / 4; ++q) {
      const uint4 v = reinterpret_cast<const uint4*>(p)[q];
      w[4 * q] = v.x, w[4 * q + 1] = v.y, w[4 * q + 2] = v.z, w[4 * q + 3] = v.w;
    }
  } else if constexpr (kBits % 2 == 0) {
#pragma unroll
    for (int q = 0; q < kBits / 2; ++q) {
      const uint2 v = reinterpret_cast<const uint2*>(p)[q];
      w[2 * q] = v.x, w[2 * q + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int q = 0; q < kBits; ++q) w[q] = p[q];
  }
}

// ---- formats: how a code becomes a weight -------------------------------------------------------

// The formats' parameters, by value into the kernels.
struct FormatArgs {
  const float* scale = nullptr;         // uintx: (N, K / group_size); fpx: (N,); int8: unused here
  const int32_t* zero_point = nullptr;  // uintx: (N, K / group_size)
  int64_t groups_per_row = 0;           // uintx
  int64_t group_size = 1;               // uintx
  int ebits = 0, mbits = 0;             // fpx
};

// Each decoder is set up for one (row n, chunk c) and maps a code to the reference's weight in
// float32. kInDtype: the value is already exactly representable in the input dtype (no rounding).
template <Fmt F>
struct Decoder;

// int8: the code is the weight's byte; |w| <= 128 is exact in every input dtype.
template <>
struct Decoder<Fmt::Int8> {
  static constexpr bool kInDtype = true;
  __device__ __forceinline__ void setup(const FormatArgs&, int64_t, int64_t, const float*) {}
  __device__ __forceinline__ float operator()(uint32_t code) const { return core::int8_byte_to_float(code); }
};

// uintx: core::affine_dequantize_value's int domain, (float(q) - zp) * scale, with an exact
// float(q) that needs no conversion instruction.
template <>
struct Decoder<Fmt::Uintx> {
  static constexpr bool kInDtype = false;
  float scale, zero;
  __device__ __forceinline__ void setup(const FormatArgs& a, int64_t n, int64_t chunk, const float*) {
    const int64_t g = n * a.groups_per_row + chunk * kChunk / a.group_size;
    scale = a.scale[g];
    zero = static_cast<float>(a.zero_point[g]);  // the reference's zero_point.to(float)
  }
  __device__ __forceinline__ float operator()(uint32_t code) const {
    return (core::small_uint_to_float(code) - zero) * scale;
  }
};

// fpx in the fused GEMM: `table` holds core::fpx_decode_value of every code (shared memory);
// the weight is fpx_decode(q) * scale in float32, as the reference's fpx_decode(...).mul_(scale).
template <>
struct Decoder<Fmt::Fpx> {
  const float* table;
  float scale;
  __device__ __forceinline__ void setup(const FormatArgs& a, int64_t n, int64_t, const float* values) {
    table = values;
    scale = a.scale[n];
  }
  __device__ __forceinline__ float operator()(uint32_t code) const { return core::mul_rn(table[code], scale); }
};

// fpx in the GEMV: the table is per output column and already holds the final weights
// (decode * scale rounded to the input dtype), so a code costs one shared-memory load.
struct FpxColumnDecoder {
  static constexpr bool kInDtype = true;
  const float* table;
  __device__ __forceinline__ float operator()(uint32_t code) const { return table[code]; }
};

// ---- epilogue -----------------------------------------------------------------------------------

// The reference's steps after its GEMM, each rounded to T: y = T(acc); int8: y = T(y * T(scale[n]));
// y = T(y + bias.to(T)[n]). mul_rn keeps nvcc from fusing the scale and bias steps into one fma.
template <typename T>
struct Epilogue {
  const float* col_scale = nullptr;  // int8's per-channel scale, else null
  const T* bias = nullptr;           // the bias already converted to T, or null
  __device__ __forceinline__ T operator()(float acc, int64_t n) const {
    float r = round_to<T>(acc);
    if (col_scale != nullptr) r = round_to<T>(core::mul_rn(r, round_to<T>(col_scale[n])));
    if (bias != nullptr) r = round_to<T>(r + to_float(bias[n]));
    return static_cast<T>(r);
  }
};

// ---- gemv: M <= 8 -------------------------------------------------------------------------------

constexpr int kGemvThreads = 128;
constexpr int kGemvCols = 4;  // output columns per block: each x load serves 4 packed rows
constexpr int kGemvMaxM = 8;

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

// ---- gemm: 8 < M <= 256, bf16 / fp16 ------------------------------------------------------------

constexpr int kBM = 64, kBN = 128, kBK = 64;
constexpr int kGemmThreads = 256;  // 8 warps as 2 (M) x 4 (N), each a 32 x 32 tile of 2 x 2 fragments
constexpr int kLd = kBK + 8;       // smem row stride of the A and B tiles: 144 bytes, so 16-byte
                                   // stores of consecutive rows hit distinct banks
constexpr int kLdC = kBN + 4;      // float row stride of the output staging tile
constexpr int kTileBytes = (kBM + kBN) * kLd * 2;
constexpr int kStageBytes = kBM * kLdC * 4;
constexpr int kGemmSmemBytes = kTileBytes > kStageBytes ? kTileBytes : kStageBytes;
constexpr int64_t kFusedGemmMaxM = 256;

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

// ---- fallback: dequantize, then at::linear --------------------------------------------------

// w[n, k] = the reference's dequantized weight in T, for any shape: code n * K + k of the flat
// stream (the reference unpacks the flattened packed tensor the same way).
template <typename T, Fmt F>
__global__ void dequantize_kernel(const uint8_t* __restrict__ packed, int bits, int64_t N, int64_t K, FormatArgs fa,
                                  T* __restrict__ out) {
  const core::QuantRange range{bits, false, 0, (1 << bits) - 1};
  const GridStride g = grid_stride();
  for (int64_t i = g.first; i < N * K; i += g.step) {
    const int64_t n = i / K, k = i % K;
    const uint8_t code = core::unpack_code(packed, bits, i);
    float v;
    if constexpr (F == Fmt::Uintx) {
      const int64_t b = n * fa.groups_per_row + k / fa.group_size;
      v = core::affine_dequantize_value(code, fa.scale[b], static_cast<float>(fa.zero_point[b]), range,
                                        core::ZeroPointDomain::Int);
    } else {
      v = core::mul_rn(core::fpx_decode_value(code, fa.ebits, fa.mbits), fa.scale[n]);
    }
    out[i] = static_cast<T>(v);
  }
}

// ---- host side ----------------------------------------------------------------------------------

// Calls f(std::integral_constant<int, B>) for the format's packed width (int8: 8; fpx: >= 2).
template <Fmt F, typename Fn>
void visit_bits(int bits, Fn&& f) {
  if constexpr (F == Fmt::Int8) {
    f(std::integral_constant<int, 8>());
  } else {
    switch (bits) {
      case 1:
        if constexpr (F == Fmt::Uintx) {
          f(std::integral_constant<int, 1>());
        } else {
          TORCH_CHECK(false, "fpx weight-only linear: 1-bit formats do not exist");  // ebits >= 1 and a sign bit
        }
        break;
      case 2: f(std::integral_constant<int, 2>()); break;
      case 3: f(std::integral_constant<int, 3>()); break;
      case 4: f(std::integral_constant<int, 4>()); break;
      case 5: f(std::integral_constant<int, 5>()); break;
      case 6: f(std::integral_constant<int, 6>()); break;
      case 7: f(std::integral_constant<int, 7>()); break;
      case 8: f(std::integral_constant<int, 8>()); break;
      default: TORCH_CHECK(false, "weight-only linear: unexpected bits ", bits);
    }
  }
}

// One weight-only linear call, after the op's checks: what every path needs.
struct Problem {
  at::Tensor x;       // (M, K), contiguous, 16-byte aligned
  at::Tensor packed;  // (N, K * bits / 8) uint8 or (N, K) int8, as given
  int64_t m, n, k;
  int bits;
  FormatArgs fa;
  at::Tensor col_scale;  // int8's per-channel scale (float32, contiguous), else undefined
  at::Tensor bias;       // bias.to(input dtype), contiguous, or undefined
};

// Why the fused kernels cannot take this weight, or nullptr when they can ("chunked" above).
const char* unchunked_reason(const Problem& p, Fmt f) {
  if (p.k % kChunk != 0) return "in_features is not a multiple of 32";
  if (f == Fmt::Uintx && p.fa.group_size % kChunk != 0) return "group_size is not a multiple of 32";
  if (!p.packed.is_contiguous() || p.packed.size(1) * 8 != p.k * p.bits || !is_aligned(p.packed.const_data_ptr(), 16))
    return "the packed weight is not a contiguous, 16-byte aligned (N, K * bits / 8) tensor";
  return nullptr;
}

template <typename T>
Epilogue<T> make_epilogue(const Problem& p) {
  Epilogue<T> ep;
  if (p.col_scale.defined()) ep.col_scale = p.col_scale.const_data_ptr<float>();
  if (p.bias.defined()) ep.bias = p.bias.const_data_ptr<T>();
  return ep;
}

template <typename T, Fmt F>
void launch_gemv(const Problem& p, at::Tensor& y) {
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

template <typename T, Fmt F>
void launch_gemm(const Problem& p, at::Tensor& y) {
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

// The weight in the input dtype, exactly as the reference dequantizes it.
at::Tensor dequantize_weight(const Problem& p, Fmt f, at::ScalarType dtype) {
  if (f == Fmt::Int8) return p.packed.to(dtype);
  const at::Tensor packed = p.packed.contiguous();
  at::Tensor w = at::empty({p.n, p.k}, p.x.options().dtype(dtype));
  if (w.numel() == 0) return w;
  visit_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const auto stream = c10::cuda::getCurrentCUDAStream();
    if (f == Fmt::Uintx) {
      dequantize_kernel<T, Fmt::Uintx><<<grid_for(w.numel()), kBlockThreads, 0, stream>>>(
          packed.const_data_ptr<uint8_t>(), p.bits, p.n, p.k, p.fa, w.data_ptr<T>());
    } else {
      dequantize_kernel<T, Fmt::Fpx><<<grid_for(w.numel()), kBlockThreads, 0, stream>>>(
          packed.const_data_ptr<uint8_t>(), p.bits, p.n, p.k, p.fa, w.data_ptr<T>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return w;
}

// Shared by the three ops: picks the path (see the top of the file) and returns y as (..., N).
template <Fmt F>
at::Tensor weight_only_linear(const at::Tensor& input, Problem p, const char* op) {
  const at::ScalarType dtype = input.scalar_type();
  at::Tensor y;
  const bool tensor_cores = dtype != at::kFloat && at::cuda::getCurrentDeviceProperties()->major >= 8;
  const char* reason = unchunked_reason(p, F);
  const bool chunked = reason == nullptr;
  if (!chunked && p.m > 0 && p.n > 0 && p.m <= kFusedGemmMaxM) {
    TORCH_WARN_ONCE(op, ": ", reason, ", so the fused CUDA kernels cannot read it word by word; this call (and "
                    "others like it) dequantizes the whole weight and runs a dense GEMM instead, which is correct "
                    "but slower at small batch sizes");
  }
  if (p.m == 0 || p.n == 0) {
    y = at::empty({p.m, p.n}, p.x.options());
  } else if (chunked && p.m <= kGemvMaxM) {
    y = at::empty({p.m, p.n}, p.x.options());
    visit_float_type(dtype, [&](auto tag) { launch_gemv<decltype(tag), F>(p, y); });
  } else if (chunked && tensor_cores && p.m <= kFusedGemmMaxM) {
    y = at::empty({p.m, p.n}, p.x.options());
    if (dtype == at::kBFloat16) {
      launch_gemm<c10::BFloat16, F>(p, y);
    } else {
      launch_gemm<c10::Half, F>(p, y);
    }
  } else {
    // The reference's own steps on a weight dequantized in one pass.
    y = at::linear(p.x, dequantize_weight(p, F, dtype));
    if (p.col_scale.defined()) y.mul_(p.col_scale.reshape({1, -1}).to(dtype));
    if (p.bias.defined()) y.add_(p.bias);
  }
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = p.n;
  return y.reshape(shape);
}

// Checks shared by the three ops (the reference's, plus one device), and the common Problem parts.
Problem make_problem(const at::Tensor& input, const at::Tensor& packed, const ops::QLinearDims& d,
                     std::initializer_list<const at::Tensor*> parts, const OptTensor& bias, const char* op) {
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  for (const at::Tensor* t : parts)
    TORCH_CHECK(t->device() == input.device(), op, ": all tensors must be on the input's device ", input.device(),
                ", got one on ", t->device());
  TORCH_CHECK(!bias.has_value() || bias->device() == input.device(), op, ": bias is on ", bias->device(),
              ", the input on ", input.device());
  Problem p;
  p.k = d.k.expect_int();
  p.n = d.n.expect_int();
  p.x = input.reshape({-1, p.k}).contiguous();
  if (!is_aligned(p.x.const_data_ptr(), 16)) p.x = p.x.clone();  // a view at an odd offset: vector loads need 16
  p.m = p.x.size(0);
  p.packed = packed;
  if (bias.has_value()) p.bias = bias->to(input.scalar_type()).contiguous();
  return p;
}

at::Tensor int8_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                        const OptTensor& bias) {
  const char* op = "int8_weight_only_linear";
  const c10::cuda::CUDAGuard guard(input.device());
  Problem p = make_problem(input, weight, ops::check_int8_weight(weight, scale, op), {&weight, &scale}, bias, op);
  p.bits = 8;
  p.col_scale = scale.reshape({-1}).contiguous();
  return weight_only_linear<Fmt::Int8>(input, std::move(p), op);
}

at::Tensor uintx_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                         const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                         const OptTensor& bias) {
  const char* op = "uintx_weight_only_linear";
  const c10::cuda::CUDAGuard guard(input.device());
  const ops::QLinearDims d = ops::check_packed_groupwise(packed, scale, zero_point, bits, group_size, op);
  Problem p = make_problem(input, packed, d, {&packed, &scale, &zero_point}, bias, op);
  p.bits = static_cast<int>(bits);
  const at::Tensor s = scale.contiguous(), zp = zero_point.contiguous();
  p.fa.scale = s.const_data_ptr<float>();
  p.fa.zero_point = zp.const_data_ptr<int32_t>();
  p.fa.groups_per_row = p.k / group_size;
  p.fa.group_size = group_size;
  return weight_only_linear<Fmt::Uintx>(input, std::move(p), op);  // s and zp outlive the launches
}

at::Tensor fpx_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                       int64_t ebits, int64_t mbits, const OptTensor& bias) {
  const char* op = "fpx_weight_only_linear";
  const c10::cuda::CUDAGuard guard(input.device());
  const ops::QLinearDims d = ops::check_fpx_weight(packed, scale, ebits, mbits, op);
  Problem p = make_problem(input, packed, d, {&packed, &scale}, bias, op);
  core::check_fpx_format(ebits, mbits);  // the reference's fpx_decode rejects e4m3 / e5m2 the same way
  p.bits = static_cast<int>(1 + ebits + mbits);
  const at::Tensor s = scale.reshape({-1}).contiguous();
  p.fa.scale = s.const_data_ptr<float>();
  p.fa.ebits = static_cast<int>(ebits);
  p.fa.mbits = static_cast<int>(mbits);
  return weight_only_linear<Fmt::Fpx>(input, std::move(p), op);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("int8_weight_only_linear", &int8_weight_only_linear_cuda);
  m.impl("uintx_weight_only_linear", &uintx_weight_only_linear_cuda);
  m.impl("fpx_weight_only_linear", &fpx_weight_only_linear_cuda);
}

}  // namespace lowbit::cuda
