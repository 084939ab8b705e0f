// Weight-only linear, path "dequantize_cublas": the weight dequantized in one pass (any shape),
// for at::linear. See weight_only_linear.cu.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAStream.h>

#include "weight_only_decode.cuh"

namespace lowbit::cuda::weight_only {
namespace {

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

}  // namespace

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

}  // namespace lowbit::cuda::weight_only
