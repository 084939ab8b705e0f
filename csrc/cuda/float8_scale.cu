// CUDA kernels of the float8 scaling-step ops, bit-identical to the CPU reference (csrc/cpu/
// float8_scale.cpp) and to cast_to_float8's "tensor" path: amax over the finite values
// (core::float8_amax_term: ±inf and NaN never set the scale), scale
// and cast through core/float8_format.h. Scales never leave the device (no host sync).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <lowbit/core/float8_format.h>
#include <lowbit/ops/float8_scale_checks.h>

#include "launch.cuh"
#include "reduce.cuh"

namespace lowbit::cuda {
namespace {

template <typename T>
__global__ void amax_kernel(const T* x, int64_t n, bool vectorized, float* amax) {
  float m = 0.0f;
  for_each_element(x, n, grid_stride(), vectorized, [&](int64_t, T v) { m = fmaxf(m, core::float8_amax_term(to_float(v))); });
  m = block_reduce(m, MaxOp{}, 0.0f);
  if (threadIdx.x == 0 && m > 0.0f) atomic_max_nonnegative(amax, m);
}

__global__ void amax_to_scale_kernel(const float* amax, float* scale, int64_t n, float max_finite, bool power_of_2) {
  const GridStride s = grid_stride();
  for (int64_t i = s.first; i < n; i += s.step) scale[i] = core::float8_scale_from_amax(amax[i], max_finite, power_of_2);
}

template <typename T, typename Fp8>
__global__ void cast_kernel(const T* x, Fp8* out, int64_t n, bool vectorized, const float* scale, float max_finite) {
  const float s = *scale;
  map_elements(x, out, n, grid_stride(), vectorized,
               [&](int64_t, T v) { return core::cast_scaled_to_float8<Fp8>(to_float(v), s, max_finite); });
}

at::Tensor float8_amax_cuda(at::TensorList xs) {
  ops::check_float8_amax_args(xs);
  const c10::cuda::CUDAGuard guard(xs[0].device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor out = at::zeros({static_cast<int64_t>(xs.size())}, xs[0].options().dtype(at::kFloat));
  for (size_t i = 0; i < xs.size(); ++i) {
    const at::Tensor xc = xs[i].contiguous();
    const int64_t n = xc.numel();
    if (n == 0) continue;
    visit_float_type(xc.scalar_type(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = xc.const_data_ptr<T>();
      amax_kernel<<<grid_for(n / kVecElems<T> + 1), kBlockThreads, 0, stream>>>(x, n, can_vectorize(x),
                                                                                out.data_ptr<float>() + i);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return out;
}

at::Tensor float8_amax_to_scale_cuda(const at::Tensor& amax, at::ScalarType dtype, bool power_of_2_scale) {
  ops::check_float8_amax_to_scale_args(amax, dtype);
  const c10::cuda::CUDAGuard guard(amax.device());
  const at::Tensor a = amax.contiguous();
  at::Tensor out = at::empty(amax.sizes(), amax.options());
  const int64_t n = a.numel();
  if (n == 0) return out;
  amax_to_scale_kernel<<<grid_for(n), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      a.const_data_ptr<float>(), out.data_ptr<float>(), n, core::float8_max_finite(dtype), power_of_2_scale);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor cast_to_float8_with_scale_cuda(const at::Tensor& x, const at::Tensor& scale, at::ScalarType dtype) {
  ops::check_cast_to_float8_with_scale_args(x, scale, dtype);
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor xc = x.contiguous();
  const at::Tensor s = scale.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(dtype));
  const int64_t n = xc.numel();
  if (n == 0) return out;
  const float max_finite = core::float8_max_finite(dtype);
  visit_float_type(xc.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = xc.const_data_ptr<T>();
    const unsigned grid = grid_for(n / kVecElems<T> + 1);
    if (dtype == at::kFloat8_e4m3fn) {
      auto* o = out.data_ptr<c10::Float8_e4m3fn>();
      cast_kernel<<<grid, kBlockThreads, 0, stream>>>(xp, o, n, can_vectorize(xp, o), s.const_data_ptr<float>(),
                                                      max_finite);
    } else {
      auto* o = out.data_ptr<c10::Float8_e5m2>();
      cast_kernel<<<grid, kBlockThreads, 0, stream>>>(xp, o, n, can_vectorize(xp, o), s.const_data_ptr<float>(),
                                                      max_finite);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("float8_amax", &float8_amax_cuda);
  m.impl("float8_amax_to_scale", &float8_amax_to_scale_cuda);
  m.impl("cast_to_float8_with_scale", &cast_to_float8_with_scale_cuda);
}

}  // namespace lowbit::cuda
