// Reductions shared by lowbit's CUDA kernels: warp and block reductions of a float, and the
// float atomics that combine per-block partial results in global memory.
//
// MaxOp / MinOp skip NaN the way fmaxf / fminf do on the CPU (the partials start at a non-NaN
// identity, so a NaN never wins); MaxNanOp propagates it, as core::max_propagating_nan does for
// the affine min / max (where a NaN marks its block).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <math.h>

#include <lowbit/core/affine_quant.h>

#include "launch.cuh"

namespace lowbit::cuda {

struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MaxNanOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return core::max_propagating_nan(a, b); }
};
struct MinOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fminf(a, b); }
};

// Reduces v over the `width` lanes of an aligned lane group (width a power of 2 <= 32; all 32
// lanes of the warp must call it); every lane of the group gets the result.
template <typename Op>
__device__ __forceinline__ float warp_reduce(float v, Op op, int width = kWarpSize) {
  for (int offset = width / 2; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset, width));
  return v;
}

// Reduces v over the whole thread block (blockDim.x a multiple of 32); every thread gets the
// result. Every thread of the block must call it; calls may follow each other directly.
template <typename Op>
__device__ __forceinline__ float block_reduce(float v, Op op, float identity) {
  __shared__ float partial[kWarpSize];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  v = warp_reduce(v, op);
  __syncthreads();  // a previous call may still be reading partial
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < num_warps ? partial[lane] : identity;
  return warp_reduce(v, op);
}

// Sums each thread's tile acc[C][R] over the block (kThreads threads, a multiple of 32): warp
// shuffles, then the per-warp partials added in warp order, a fixed order (so float sums are
// deterministic). Thread t < C * R gets the sum of entry (t / R, t % R); the others get 0. Every
// thread must call it; `partial` is the caller's shared buffer, which must not be reused before a
// __syncthreads().
template <int kThreads, int C, int R, typename Acc>
__device__ __forceinline__ Acc block_sum_tile(const Acc (&acc)[C][R], Acc (&partial)[kThreads / kWarpSize][C * R]) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
  for (int i = 0; i < C; ++i)
#pragma unroll
    for (int m = 0; m < R; ++m) {
      Acc v = acc[i][m];
#pragma unroll
      for (int off = kWarpSize / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) partial[warp][i * R + m] = v;
    }
  __syncthreads();
  Acc sum = 0;
  if (threadIdx.x < C * R) {
#pragma unroll
    for (int q = 0; q < kThreads / kWarpSize; ++q) sum += partial[q][threadIdx.x];
  }
  return sum;
}

// amax accumulation into global memory: for non-negative, non-NaN floats the int32 bit patterns
// order like the values, so one integer atomicMax is an exact float max. `*target` starts at 0.
__device__ __forceinline__ void atomic_max_nonnegative(float* target, float v) {
  atomicMax(reinterpret_cast<int*>(target), __float_as_int(v));
}

// Order-preserving map of non-NaN floats to uint32 (negative floats have their bits flipped, the
// others get the sign bit set), so unsigned atomicMin / atomicMax give exact float min / max.
// A positive NaN (the canonical one of core::affine_max_term) maps above +inf: atomicMax keeps it.
__device__ __forceinline__ uint32_t float_to_ordered(float v) {
  const uint32_t bits = __float_as_uint(v);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ float ordered_to_float(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// Host-side twins for the initial values of min / max buffers (+inf / -inf).
constexpr uint32_t kOrderedPosInf = 0x7f800000u | 0x80000000u;
constexpr uint32_t kOrderedNegInf = ~0xff800000u;

}  // namespace lowbit::cuda
