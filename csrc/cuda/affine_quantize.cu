// CUDA kernels of lowbit::quantize_affine / dequantize_affine: elementwise, each element with its
// block's scale and zero point and the same core::affine_quantize_value / affine_dequantize_value
// as the CPU reference (csrc/cpu/affine.cpp), so codes and values are bit-identical.
//
// The element -> block map is i / run_length when blocks are contiguous runs (per-tensor,
// per-row, per-group along the last dim), core::BlockIndexer otherwise (affine_blocks.cuh).
// scale and zero_point are converted to float32 first, like the CPU reference (a small device op).
// One difference, on purpose: a code outside [qmin, qmax] dequantizes to NaN here, where the CPU
// op raises (an error on CUDA would need a host sync).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/affine_checks.h>

#include "affine_blocks.cuh"
#include "launch.cuh"

namespace lowbit::cuda {
namespace {

// Codes go out as raw bytes: the low 8 bits of an int8 code are its two's-complement byte, so one
// kernel serves int8 and uint8 storage.
template <typename T, typename Blocks>
__global__ void quantize_kernel(const T* x, uint8_t* codes, int64_t n, bool vectorized, Blocks blocks,
                                const float* scale, const float* zp, core::QuantRange r, core::ZeroPointDomain d) {
  map_elements(x, codes, n, grid_stride(), vectorized, [&](int64_t i, T v) {
    const int64_t b = blocks.block_of(i);
    return static_cast<uint8_t>(core::affine_quantize_value(to_float(v), scale[b], zp[b], r, d) & 0xff);
  });
}

template <typename Out, typename Blocks>
__global__ void dequantize_kernel(const uint8_t* codes, Out* out, int64_t n, bool vectorized, Blocks blocks,
                                  const float* scale, const float* zp, core::QuantRange r, core::ZeroPointDomain d) {
  map_elements(codes, out, n, grid_stride(), vectorized, [&](int64_t i, uint8_t byte) {
    const int64_t b = blocks.block_of(i);
    const int32_t q = r.is_signed ? static_cast<int32_t>(static_cast<int8_t>(byte)) : static_cast<int32_t>(byte);
    return static_cast<Out>(core::affine_dequantize_code(q, scale[b], zp[b], r, d));  // NaN if out of range
  });
}

at::Tensor quantize_affine_cuda(const at::Tensor& input, at::IntArrayRef block_size, const at::Tensor& scale,
                                const at::Tensor& zero_point, c10::string_view qdtype,
                                c10::string_view zero_point_domain) {
  const ops::AffineArgs args =
      ops::parse_quantize_args(input, block_size, scale, zero_point, qdtype, zero_point_domain);
  const core::QuantRange range = args.range;
  const core::ZeroPointDomain domain = args.domain;
  const core::BlockIndexer ix = core::make_block_indexer(input.sizes(), block_size);

  const c10::cuda::CUDAGuard guard(input.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor x = input.contiguous();
  const at::Tensor s = scale.contiguous().to(at::kFloat);
  const at::Tensor zp = zero_point.contiguous().to(at::kFloat);
  at::Tensor out = at::empty(input.sizes(), input.options().dtype(ops::affine_storage_dtype(range)));
  const int64_t n = x.numel();
  if (n == 0) return out;
  auto* codes = static_cast<uint8_t*>(out.data_ptr());
  visit_float_type</*kWithDouble=*/true>(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.const_data_ptr<T>();
    with_block_map(x.sizes(), block_size, ix, n, [&](auto blocks) {
      quantize_kernel<<<grid_for(n / kVecElems<T> + 1), kBlockThreads, 0, stream>>>(
          in, codes, n, can_vectorize(in, codes), blocks, s.const_data_ptr<float>(), zp.const_data_ptr<float>(),
          range, domain);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

at::Tensor dequantize_affine_cuda(const at::Tensor& data, at::IntArrayRef block_size, const at::Tensor& scale,
                                  const at::Tensor& zero_point, c10::string_view qdtype,
                                  c10::string_view zero_point_domain, at::ScalarType output_dtype) {
  const ops::AffineArgs args =
      ops::parse_dequantize_args(data, block_size, scale, zero_point, qdtype, zero_point_domain, output_dtype);
  const core::QuantRange range = args.range;
  const core::ZeroPointDomain domain = args.domain;
  const core::BlockIndexer ix = core::make_block_indexer(data.sizes(), block_size);

  const c10::cuda::CUDAGuard guard(data.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor q = data.contiguous();
  const at::Tensor s = scale.contiguous().to(at::kFloat);
  const at::Tensor zp = zero_point.contiguous().to(at::kFloat);
  // float32 / bfloat16 / float16 are written directly (one rounding of the float32 value, as the
  // CPU's float32-then-convert); any other output dtype goes through float32 like on the CPU.
  const bool direct =
      output_dtype == at::kFloat || output_dtype == at::kBFloat16 || output_dtype == at::kHalf;
  at::Tensor out = at::empty(data.sizes(), data.options().dtype(direct ? output_dtype : at::kFloat));
  const int64_t n = q.numel();
  if (n > 0) {
    visit_float_type(out.scalar_type(), [&](auto tag) {
      using Out = decltype(tag);
      const uint8_t* in = static_cast<const uint8_t*>(q.const_data_ptr());
      Out* values = out.data_ptr<Out>();
      with_block_map(q.sizes(), block_size, ix, n, [&](auto blocks) {
        dequantize_kernel<<<grid_for(n / kVecElems<uint8_t> + 1), kBlockThreads, 0, stream>>>(
            in, values, n, can_vectorize(in, values), blocks, s.const_data_ptr<float>(), zp.const_data_ptr<float>(),
            range, domain);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
  return direct ? out : out.to(output_dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("quantize_affine", &quantize_affine_cuda);
  m.impl("dequantize_affine", &dequantize_affine_cuda);
}

}  // namespace lowbit::cuda
