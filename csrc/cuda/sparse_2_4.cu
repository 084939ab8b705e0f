// CUDA kernels of lowbit::compress_2_4 / decompress_2_4: one thread per metadata byte (two groups
// of 4), the same core/sparse_2_4_format.h code as the CPU reference, values copied bit for bit.
// Unlike the CPU reference, compress does not reject groups with more than 2 nonzeros (that check
// would need a device-to-host sync); it stores their first two, as the format header says.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <lowbit/core/sparse_2_4_format.h>
#include <lowbit/ops/sparse_2_4_checks.h>

#include "launch.cuh"

namespace lowbit::cuda {
namespace {

template <typename T>
__device__ __forceinline__ bool nonzero(T v) {
  if constexpr (std::is_same_v<T, int8_t>) {
    return v != 0;
  } else if constexpr (std::is_same_v<T, double>) {
    return v != 0.0;
  } else {
    return to_float(v) != 0.0f;
  }
}

template <typename T>
__global__ void compress_2_4_kernel(const T* x, T* values, uint8_t* meta, int64_t pairs) {
  const GridStride s = grid_stride();
  for (int64_t pair = s.first; pair < pairs; pair += s.step) {
    uint32_t byte = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      T g[4];
      uint32_t present = 0;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        g[i] = x[8 * pair + 4 * h + i];
        present |= static_cast<uint32_t>(nonzero(g[i])) << i;
      }
      const uint32_t code = core::sparse_2_4_code(present);
      values[4 * pair + 2 * h] = g[core::sparse_2_4_pos0(code)];
      values[4 * pair + 2 * h + 1] = g[core::sparse_2_4_pos1(code)];
      byte |= code << (4 * h);
    }
    meta[pair] = static_cast<uint8_t>(byte);
  }
}

template <typename T>
__global__ void decompress_2_4_kernel(const T* values, const uint8_t* meta, T* out, int64_t pairs) {
  const GridStride s = grid_stride();
  for (int64_t pair = s.first; pair < pairs; pair += s.step) {
    const uint32_t byte = meta[pair];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t code = (byte >> (4 * h)) & 0xFu;
      T* g = out + 8 * pair + 4 * h;
      g[core::sparse_2_4_pos0(code)] = values[4 * pair + 2 * h];
      g[core::sparse_2_4_pos1(code)] = values[4 * pair + 2 * h + 1];
    }
  }
}

// Calls f(T()) for the value dtypes of the format.
template <typename F>
void visit_value_type(at::ScalarType t, F&& f) {
  if (t == at::kChar) {
    f(int8_t());
  } else {
    visit_float_type<true>(t, f);
  }
}

std::tuple<at::Tensor, at::Tensor> compress_2_4_cuda(const at::Tensor& x) {
  ops::check_compress_2_4_args(x);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const int64_t rows = x.size(0), cols = x.size(1), pairs = rows * cols / 8;
  at::Tensor values = at::empty({rows, cols / 2}, x.options());
  at::Tensor meta = at::empty({rows, cols / 8}, x.options().dtype(at::kByte));
  if (pairs == 0) return {values, meta};
  visit_value_type(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    compress_2_4_kernel<<<grid_for(pairs), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<T>(), values.data_ptr<T>(), meta.data_ptr<uint8_t>(), pairs);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {values, meta};
}

at::Tensor decompress_2_4_cuda(const at::Tensor& values, const at::Tensor& meta) {
  ops::check_decompress_2_4_args(values, meta);
  const c10::cuda::CUDAGuard guard(values.device());
  const at::Tensor vc = values.contiguous(), mc = meta.contiguous();
  const int64_t rows = values.size(0), cols = values.size(1) * 2, pairs = rows * cols / 8;
  at::Tensor out = at::zeros({rows, cols}, values.options());
  if (pairs == 0) return out;
  visit_value_type(values.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    decompress_2_4_kernel<<<grid_for(pairs), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        vc.const_data_ptr<T>(), mc.const_data_ptr<uint8_t>(), out.data_ptr<T>(), pairs);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("compress_2_4", &compress_2_4_cuda);
  m.impl("decompress_2_4", &decompress_2_4_cuda);
}

}  // namespace lowbit::cuda
