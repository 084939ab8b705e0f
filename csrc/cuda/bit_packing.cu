// CUDA kernels of lowbit::pack_uintx / unpack_uintx: one thread per OUTPUT element (a packed
// byte, or a code), each computed with the same core/bitstream.h function as the CPU reference
// (csrc/cpu/bit_packing.cpp), so the streams are bit-identical.
//
// One difference, on purpose: the CPU pack rejects codes that do not fit in `bits`; on CUDA
// that check would cost a device-to-host sync, so pack masks each code to its low `bits` bits
// (core::pack_byte masks anyway) and never fails on the values.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/core/bitstream.h>
#include <lowbit/ops/bit_packing_checks.h>

#include "launch.cuh"

namespace lowbit::cuda {
namespace {

__global__ void pack_uintx_kernel(const uint8_t* codes, int64_t numel, int bits, uint8_t* packed, int64_t num_bytes) {
  const GridStride s = grid_stride();
  for (int64_t j = s.first; j < num_bytes; j += s.step) packed[j] = core::pack_byte(codes, numel, bits, j);
}

__global__ void unpack_uintx_kernel(const uint8_t* packed, int bits, uint8_t* codes, int64_t numel) {
  const GridStride s = grid_stride();
  for (int64_t i = s.first; i < numel; i += s.step) codes[i] = core::unpack_code(packed, bits, i);
}

at::Tensor pack_uintx_cuda(const at::Tensor& codes, int64_t bits) {
  ops::check_pack_uintx_args(codes, bits);
  const c10::cuda::CUDAGuard guard(codes.device());
  const at::Tensor c = codes.contiguous();
  const int64_t n = c.numel();
  at::Tensor out = at::empty({core::packed_num_bytes(n, static_cast<int>(bits))}, codes.options());
  const int64_t num_bytes = out.numel();
  if (num_bytes == 0) return out;
  pack_uintx_kernel<<<grid_for(num_bytes), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      c.const_data_ptr<uint8_t>(), n, static_cast<int>(bits), out.data_ptr<uint8_t>(), num_bytes);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor unpack_uintx_cuda(const at::Tensor& packed, int64_t bits, int64_t numel) {
  ops::check_unpack_uintx_args(packed, bits, c10::SymInt(numel));
  const c10::cuda::CUDAGuard guard(packed.device());
  const at::Tensor p = packed.contiguous();
  at::Tensor out = at::empty({numel}, packed.options());
  if (numel == 0) return out;
  unpack_uintx_kernel<<<grid_for(numel), kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      p.const_data_ptr<uint8_t>(), static_cast<int>(bits), out.data_ptr<uint8_t>(), numel);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("pack_uintx", &pack_uintx_cuda);
  m.impl("unpack_uintx", &unpack_uintx_cuda);
}

}  // namespace lowbit::cuda
