// Device code shared by the weight-only kernels: exact dtype conversions, wide loads of x and of
// packed chunks, the per-format decoders (code -> the reference's weight) and the epilogue (the
// reference's roundings after its GEMM).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <lowbit/core/affine_quant.h>
#include <lowbit/core/bitstream.h>
#include <lowbit/core/fpx_format.h>

#include "launch.cuh"
#include "weight_only_linear.cuh"

namespace lowbit::cuda::weight_only {

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

template <typename T>
inline Epilogue<T> make_epilogue(const Problem& p) {
  Epilogue<T> ep;
  if (p.col_scale.defined()) ep.col_scale = p.col_scale.const_data_ptr<float>();
  if (p.bias.defined()) ep.bias = p.bias.const_data_ptr<T>();
  return ep;
}

}  // namespace lowbit::cuda::weight_only
