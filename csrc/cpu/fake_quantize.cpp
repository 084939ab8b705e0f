// CPU kernel of lowbit::fake_quantize_affine: choose, quantize and dequantize fused into one pass
// over each block (csrc/cpu/vec/affine.cpp), where the blocks are contiguous runs and the dtype is
// float32 / bfloat16 / float16; otherwise (and with the reference kernel set) the composite of
// the three ops, which is the definition the fused pass equals bit for bit.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <limits>

#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/affine_checks.h>
#include <lowbit/ops/fake_quantize.h>

namespace lowbit::cpu {
namespace {

at::Tensor fake_quantize_affine_cpu(const at::Tensor& input, at::IntArrayRef block_size, c10::string_view qdtype,
                                    c10::string_view mapping, c10::string_view zero_point_domain) {
  const ops::AffineArgs args = ops::parse_fake_quantize_args(input, block_size, qdtype, mapping, zero_point_domain);
  const vec::Kernels* k = vec::kernels();
  const int64_t run = core::contiguous_block_numel(input.sizes(), block_size);
  const at::ScalarType t = input.scalar_type();
  if (k == nullptr || run <= 0 || !(t == at::kFloat || t == at::kBFloat16 || t == at::kHalf)) {
    return ops::fake_quantize_composite(input, block_size, qdtype, mapping, zero_point_domain);
  }
  const at::Tensor x = input.contiguous();
  at::Tensor out = at::empty(input.sizes(), input.options());
  const vec::AffineRuns runs{x.numel() / run, run, args.range, args.domain};
  k->fake_quantize_affine(x.const_data_ptr(), t, runs, args.symmetric, std::numeric_limits<float>::epsilon(),
                          out.data_ptr());
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("fake_quantize_affine", &fake_quantize_affine_cpu); }

}  // namespace lowbit::cpu
