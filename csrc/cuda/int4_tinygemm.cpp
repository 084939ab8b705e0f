// tinygemm on CUDA (aten::_convert_weight_to_int4pack / _weight_int4pack_mm) for lowbit's int4wo
// format; the CPU kernels are in csrc/cpu/quantized_linear_reference.cpp.
#include <ATen/core/Tensor.h>
#include <ATen/ops/_convert_weight_to_int4pack.h>
#include <ATen/ops/_weight_int4pack_mm.h>
#include <torch/library.h>

#include <lowbit/ops/quantized_linear_checks.h>

namespace lowbit::cuda {
namespace {

using OptTensor = std::optional<at::Tensor>;

at::Tensor int4_pack_tinygemm_cuda(const at::Tensor& codes, int64_t inner_k_tiles) {
  ops::check_int4_pack_args(codes, inner_k_tiles, 8);
  // tinygemm's CUDA packer takes two codes per byte, the even column in the high nibble.
  const at::Tensor c = codes.to(at::kInt);
  const at::Tensor even = c.slice(1, 0, c.size(1), 2);
  const at::Tensor odd = c.slice(1, 1, c.size(1), 2);
  return at::_convert_weight_to_int4pack(even.bitwise_left_shift(4).bitwise_or(odd).to(at::kByte).contiguous(),
                                         inner_k_tiles);
}

at::Tensor int4_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& sz,
                                        int64_t group_size, const OptTensor& bias) {
  const char* op = "int4_weight_only_linear";
  const ops::QLinearDims d = ops::check_int4_tinygemm(packed, sz, group_size, op);
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  TORCH_CHECK(packed.scalar_type() == at::kInt, op, ": the packed weight (", packed.scalar_type(), ") was packed for "
              "the CPU; tinygemm's packing is per device type: quantize on the GPU (quantize_(..., device='cuda'))");
  const at::Tensor x = input.reshape({-1, input.size(-1)}).to(sz.scalar_type()).contiguous();
  at::Tensor y = at::_weight_int4pack_mm(x, packed, group_size, sz);
  if (bias.has_value()) y.add_(bias->to(y.scalar_type()));
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = y.size(1);
  return y.to(input.scalar_type()).reshape(shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("int4_pack_tinygemm", &int4_pack_tinygemm_cuda);
  m.impl("int4_weight_only_linear", &int4_weight_only_linear_cuda);
}

}  // namespace lowbit::cuda
