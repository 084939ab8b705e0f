// Launch helpers shared by lowbit's CUDA kernels: grid sizing for grid-stride loops, and
// element loops that read 16 bytes at a time where the pointers allow, with a scalar tail.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

namespace lowbit::cuda {

constexpr int kBlockThreads = 256;
constexpr int kWarpSize = 32;

// Streaming multiprocessors of the current device, looked up once per device (no sync).
inline int num_sms() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  const int device = c10::cuda::current_device();
  const int slot = device < kMaxDevices ? device : kMaxDevices - 1;
  int n = device < kMaxDevices ? cache[slot].load(std::memory_order_relaxed) : 0;
  if (n == 0) {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    if (device < kMaxDevices) cache[slot].store(n, std::memory_order_relaxed);
  }
  return n;
}

// Blocks for a grid-stride loop over `items` work items: enough to fill every SM, no more.
inline unsigned grid_for(int64_t items, int threads = kBlockThreads) {
  const int64_t wanted = (items + threads - 1) / threads;
  const int64_t full = static_cast<int64_t>(num_sms()) * (2048 / threads);
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, full)));
}

// Calls f(std::integral_constant<int, MT>) with the smallest row tile MT in {1, 2, 4, 8} >= min(m, 8):
// the small-M kernels (GEMV-like, one template instance per tile height) pick theirs with it.
template <typename Fn>
void visit_row_tile(int64_t m, Fn&& f) {
  if (m <= 1) {
    f(std::integral_constant<int, 1>());
  } else if (m <= 2) {
    f(std::integral_constant<int, 2>());
  } else if (m <= 4) {
    f(std::integral_constant<int, 4>());
  } else {
    f(std::integral_constant<int, 8>());
  }
}

// Calls f(T()) with T the element type of a float32 / bfloat16 / float16 tensor (and float64
// with kWithDouble). The op's checks have rejected every other dtype before this point.
template <bool kWithDouble = false, typename F>
void visit_float_type(at::ScalarType t, F&& f) {
  switch (t) {
    case at::kFloat: f(float()); break;
    case at::kBFloat16: f(c10::BFloat16()); break;
    case at::kHalf: f(c10::Half()); break;
    case at::kDouble:
      if constexpr (kWithDouble) {
        f(double());
        break;
      }
      [[fallthrough]];
    default: TORCH_CHECK(false, "lowbit CUDA kernel: unexpected dtype ", t);
  }
}

// Element -> float32 exactly as the CPU reference's .to(float) does, NaN sign and payload included
// (sm_90's bfloat16 / float16 -> float32 instructions need not keep them).
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(double v) { return static_cast<float>(v); }
__device__ __forceinline__ float to_float(c10::BFloat16 v) { return __uint_as_float(static_cast<uint32_t>(v.x) << 16); }
__device__ __forceinline__ float to_float(c10::Half v) {
  const float f = static_cast<float>(v);
  return f == f ? f : c10::detail::fp16_ieee_to_fp32_value(v.x);
}

inline bool is_aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Elements of T in one 16-byte load.
template <typename T>
constexpr int kVecElems = sizeof(T) >= 16 ? 1 : static_cast<int>(16 / sizeof(T));

// N consecutive elements moved as one access (16 bytes for loads; stores of smaller packs use
// their own size as alignment).
template <typename T, int N>
struct alignas(sizeof(T) * N >= 16 ? 16 : sizeof(T) * N) Pack {
  T v[N];
};

// Byte alignment that map_elements needs of its output for a vectorized pass.
template <typename In, typename Out>
constexpr size_t kOutPackAlign = alignof(Pack<Out, kVecElems<In>>);

// True when x (and y, if given) allow the vectorized pass over n elements starting there.
template <typename In, typename Out = In>
bool can_vectorize(const In* x, const Out* y = nullptr) {
  return is_aligned(x, 16) && (y == nullptr || is_aligned(y, kOutPackAlign<In, Out>));
}

// This thread's share of a grid-stride loop: first item and step.
struct GridStride {
  int64_t first, step;
};

__device__ __forceinline__ GridStride grid_stride() {
  return {static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
          static_cast<int64_t>(gridDim.x) * blockDim.x};
}

// Calls f(i, x[i]) for this thread's share of [0, n): packs first, first + step, ... of
// kVecElems<T> elements when `vectorized` (x 16-byte aligned), then the scalar tail; plain
// elements first, first + step, ... otherwise.
template <typename T, typename F>
__device__ __forceinline__ void for_each_element(const T* x, int64_t n, GridStride s, bool vectorized, F&& f) {
  constexpr int V = kVecElems<T>;
  int64_t tail = 0;
  if (vectorized) {
    const int64_t packs = n / V;
    const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
    for (int64_t p = s.first; p < packs; p += s.step) {
      const Pack<T, V> in = xv[p];
#pragma unroll
      for (int k = 0; k < V; ++k) f(p * V + k, in.v[k]);
    }
    tail = packs * V;
  }
  for (int64_t i = tail + s.first; i < n; i += s.step) f(i, x[i]);
}

// y[i] = op(i, x[i]) for this thread's share of [0, n), vectorized like for_each_element;
// the stores go out as packs too (the caller checks y's alignment with can_vectorize).
template <typename In, typename Out, typename Op>
__device__ __forceinline__ void map_elements(const In* x, Out* y, int64_t n, GridStride s, bool vectorized, Op&& op) {
  constexpr int V = kVecElems<In>;
  int64_t tail = 0;
  if (vectorized) {
    const int64_t packs = n / V;
    const auto* xv = reinterpret_cast<const Pack<In, V>*>(x);
    auto* yv = reinterpret_cast<Pack<Out, V>*>(y);
    for (int64_t p = s.first; p < packs; p += s.step) {
      const Pack<In, V> in = xv[p];
      Pack<Out, V> out;
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = op(p * V + k, in.v[k]);
      yv[p] = out;
    }
    tail = packs * V;
  }
  for (int64_t i = tail + s.first; i < n; i += s.step) y[i] = op(i, x[i]);
}

}  // namespace lowbit::cuda
