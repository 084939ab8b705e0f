// CUDA kernels of lowbit::fpx_encode / fpx_decode: elementwise, per element the same
// core/fpx_format.h functions as the CPU reference (csrc/cpu/fpx.cpp), so the codes and values
// are bit-identical.
//
// One difference, on purpose: the CPU decode rejects codes with bits above the format's width
// (1 + ebits + mbits), which needs a pass over the codes and an error raised from the host. On
// CUDA that check would cost a device-to-host sync, so such a code decodes to NaN instead (never
// to a finite value it does not have).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/core/fpx_format.h>
#include <lowbit/ops/fpx_checks.h>

#include "launch.cuh"

namespace lowbit::cuda {
namespace {

template <typename T>
__global__ void fpx_encode_kernel(const T* x, uint8_t* codes, int64_t n, bool vectorized, int ebits, int mbits) {
  map_elements(x, codes, n, grid_stride(), vectorized,
               [&](int64_t, T v) { return core::fpx_encode_value(to_float(v), ebits, mbits); });
}

template <typename Out>
__global__ void fpx_decode_kernel(const uint8_t* codes, Out* out, int64_t n, bool vectorized, int ebits, int mbits) {
  const int width = 1 + ebits + mbits;
  map_elements(codes, out, n, grid_stride(), vectorized, [&](int64_t, uint8_t c) {
    const float v = core::fpx_decode_value(c, ebits, mbits);
    return static_cast<Out>((c >> width) != 0 ? __uint_as_float(0x7fc00000u) : v);
  });
}

at::Tensor fpx_encode_cuda(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  ops::check_fpx_encode_args(x, ebits, mbits);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(at::kByte));
  const int64_t n = xc.numel();
  if (n == 0) return out;
  visit_float_type(xc.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = xc.const_data_ptr<T>();
    uint8_t* codes = out.data_ptr<uint8_t>();
    fpx_encode_kernel<<<grid_for(n / kVecElems<T> + 1), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        in, codes, n, can_vectorize(in, codes), static_cast<int>(ebits), static_cast<int>(mbits));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor fpx_decode_cuda(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  ops::check_fpx_decode_args(codes, ebits, mbits, dtype);
  const c10::cuda::CUDAGuard guard(codes.device());
  const at::Tensor c = codes.contiguous();
  at::Tensor out = at::empty(codes.sizes(), codes.options().dtype(dtype));
  const int64_t n = c.numel();
  if (n == 0) return out;
  // Writing bfloat16 / float16 directly rounds the exact float32 value once, like the CPU's
  // decode-to-float32-then-convert.
  visit_float_type(dtype, [&](auto tag) {
    using Out = decltype(tag);
    const uint8_t* in = c.const_data_ptr<uint8_t>();
    Out* values = out.data_ptr<Out>();
    fpx_decode_kernel<<<grid_for(n / kVecElems<uint8_t> + 1), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        in, values, n, can_vectorize(in, values), static_cast<int>(ebits), static_cast<int>(mbits));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("fpx_encode", &fpx_encode_cuda);
  m.impl("fpx_decode", &fpx_decode_cuda);
}

}  // namespace lowbit::cuda
