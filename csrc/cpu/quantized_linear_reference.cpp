// Reference kernels of the quantized linear ops, built from lowbit's affine / fpx / float8 ops
// and aten GEMMs. Registered at CompositeExplicitAutograd, so they are the CPU kernels and also
// run on CUDA until a dedicated CUDA kernel is registered at the CUDA key (which takes precedence).
// The fast CPU kernels (quantized_linear_cpu.cpp, registered at the CPU key) are tested against
// these functions and call them for the cases they do not take.
// int4's tinygemm kernels are per device (CPU here, CUDA in csrc/cuda/int4_tinygemm.cpp).
#include <ATen/core/Tensor.h>
#include <ATen/ops/_convert_weight_to_int4pack_for_cpu.h>
#include <ATen/ops/_int_mm.h>
#include <ATen/ops/_weight_int4pack_mm_for_cpu.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/matmul.h>
#include <torch/library.h>

#include <lowbit/core/affine.h>
#include <lowbit/core/bit_packing.h>
#include <lowbit/core/float8_cast.h>
#include <lowbit/core/fpx.h>
#include <lowbit/core/scaled_mm.h>
#include <lowbit/cpu/quantized_linear_reference.h>
#include <lowbit/ops/quantized_linear_checks.h>

namespace lowbit::cpu {
namespace {

using ops::check_float8_weight;
using ops::check_fpx_weight;
using ops::check_int4_tinygemm;
using ops::check_int8_weight;
using ops::check_packed_groupwise;
using ops::check_qlinear_bias;
using ops::check_qlinear_input;
using ops::QLinearDims;

using OptTensor = std::optional<at::Tensor>;

// (..., K) -> (M, K); unflatten_rows (the header) goes back to (..., N).
at::Tensor flatten_rows(const at::Tensor& input) { return input.reshape({-1, input.size(-1)}); }

void check_concrete(const at::Tensor& input, const QLinearDims& d, const OptTensor& bias, const char* op) {
  check_qlinear_input(input, d.k, op);
  check_qlinear_bias(bias, d.n, op);
}

}  // namespace

at::Tensor int8_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                       const OptTensor& bias) {
  check_concrete(input, check_int8_weight(weight, scale, "int8_weight_only_linear"), bias, "int8_weight_only_linear");
  // int8 -> input dtype is exact; the per-channel scale multiplies the GEMM's output columns.
  at::Tensor y = at::linear(flatten_rows(input), weight.to(input.scalar_type()));
  y = y.mul_(scale.reshape({1, -1}).to(y.scalar_type()));
  return unflatten_rows(add_bias(y, bias), input);
}

namespace {

// int8 x int8 -> int32. aten::_int_mm on CPUs and on CUDA where cuBLAS takes the shape
// (M > 16, K and N multiples of 8); otherwise a float64 GEMM, which is exact for these sums
// (|sum| <= K * 127 * 128 < 2^53), so both paths give the same int32 result.
at::Tensor int8_gemm_int32(const at::Tensor& a, const at::Tensor& b_t) {
  const bool cuda_ok = a.size(0) > 16 && a.size(1) % 8 == 0 && b_t.size(0) % 8 == 0;
  if (!a.is_cuda() || cuda_ok) return at::_int_mm(a, b_t.t());
  return at::matmul(a.to(at::kDouble), b_t.t().to(at::kDouble)).to(at::kInt);
}

}  // namespace

at::Tensor int8_dynamic_activation_int8_linear_ref(const at::Tensor& input, const at::Tensor& weight,
                                                   const at::Tensor& weight_scale, const OptTensor& bias) {
  const char* op = "int8_dynamic_activation_int8_linear";
  check_concrete(input, check_int8_weight(weight, weight_scale, op), bias, op);
  const at::Tensor x = flatten_rows(input);
  const int64_t k = x.size(1);
  auto [x_scale, x_zp] = core::choose_qparams_affine(x, {1, k}, "int8", "symmetric");
  const at::Tensor xq = core::quantize_affine(x, {1, k}, x_scale, x_zp, "int8");
  const at::Tensor acc = int8_gemm_int32(xq, weight);
  at::Tensor y = acc.to(at::kFloat).mul_(x_scale.reshape({-1, 1})).mul_(weight_scale.reshape({1, -1}));
  if (bias.has_value()) y.add_(bias->to(at::kFloat));
  return unflatten_rows(y.to(input.scalar_type()), input);
}

namespace {

// tinygemm on CPUs (aten::_convert_weight_to_int4pack_for_cpu / _weight_int4pack_mm_for_cpu); the
// CUDA kernels are in csrc/cuda/int4_tinygemm.cpp (the packing differs per device type).
at::Tensor int4_pack_tinygemm_cpu(const at::Tensor& codes, int64_t inner_k_tiles) {
  ops::check_int4_pack_args(codes, inner_k_tiles, 16);
  return at::_convert_weight_to_int4pack_for_cpu(codes.to(at::kInt).contiguous(), inner_k_tiles);
}

at::Tensor int4_weight_only_linear_cpu(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& sz,
                                       int64_t group_size, const OptTensor& bias) {
  const char* op = "int4_weight_only_linear";
  check_concrete(input, check_int4_tinygemm(packed, sz, group_size, op), bias, op);
  TORCH_CHECK(packed.scalar_type() == at::kByte, op, ": the packed weight (", packed.scalar_type(), ") was packed for "
              "CUDA; tinygemm's packing is per device type: quantize on the CPU");
  const at::Tensor x = flatten_rows(input).to(sz.scalar_type()).contiguous();
  const at::Tensor y = at::_weight_int4pack_mm_for_cpu(x, packed, group_size, sz);
  return unflatten_rows(add_bias(y, bias).to(input.scalar_type()), input);
}

// Codes (N, K) of a row-packed weight (N, K * bits / 8).
at::Tensor unpack_rows(const at::Tensor& packed, int64_t bits, int64_t n, int64_t k) {
  return core::unpack_uintx(packed.reshape({-1}), bits, n * k).reshape({n, k});
}

at::Tensor dequantize_groupwise(const at::Tensor& packed, const at::Tensor& scale, const at::Tensor& zero_point,
                                int64_t bits, int64_t group_size, at::ScalarType dtype) {
  const int64_t n = packed.size(0), k = packed.size(1) * 8 / bits;
  return core::dequantize_affine(unpack_rows(packed, bits, n, k), {1, group_size}, scale, zero_point,
                                 "uint" + std::to_string(bits), "int", dtype);
}

}  // namespace

at::Tensor fake_quantize_int8_per_token(const at::Tensor& x2d) {
  const at::Tensor x = x2d.to(at::kFloat);
  const int64_t k = x.size(1);
  auto [xs, xzp] = core::choose_qparams_affine(x, {1, k}, "int8", "asymmetric");
  const at::Tensor xq = core::quantize_affine(x, {1, k}, xs, xzp, "int8");
  return core::dequantize_affine(xq, {1, k}, xs, xzp, "int8");
}

at::Tensor int8_dynamic_activation_int4_linear_ref(const at::Tensor& input, const at::Tensor& packed,
                                                   const at::Tensor& scale, const at::Tensor& zero_point,
                                                   int64_t group_size, const OptTensor& bias) {
  const char* op = "int8_dynamic_activation_int4_linear";
  check_concrete(input, check_packed_groupwise(packed, scale, zero_point, 4, group_size, op), bias, op);
  const at::Tensor x_fq = fake_quantize_int8_per_token(flatten_rows(input));
  const at::Tensor w = dequantize_groupwise(packed, scale, zero_point, 4, group_size, at::kFloat);
  at::Tensor y = add_bias(at::linear(x_fq, w), bias);
  return unflatten_rows(y.to(input.scalar_type()), input);
}

at::Tensor uintx_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                        const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                        const OptTensor& bias) {
  const char* op = "uintx_weight_only_linear";
  check_concrete(input, check_packed_groupwise(packed, scale, zero_point, bits, group_size, op), bias, op);
  const at::Tensor w = dequantize_groupwise(packed, scale, zero_point, bits, group_size, input.scalar_type());
  return unflatten_rows(add_bias(at::linear(flatten_rows(input), w), bias), input);
}

at::Tensor fpx_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                      int64_t ebits, int64_t mbits, const OptTensor& bias) {
  const char* op = "fpx_weight_only_linear";
  const QLinearDims d = check_fpx_weight(packed, scale, ebits, mbits, op);
  check_concrete(input, d, bias, op);
  const int64_t n = packed.size(0), k = d.k.expect_int();
  const at::Tensor codes = unpack_rows(packed, 1 + ebits + mbits, n, k);
  const at::Tensor w =
      core::fpx_decode(codes, ebits, mbits, at::kFloat).mul_(scale.reshape({-1, 1})).to(input.scalar_type());
  return unflatten_rows(add_bias(at::linear(flatten_rows(input), w), bias), input);
}

at::Tensor float8_weight_only_linear_ref(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                         const OptTensor& bias) {
  const char* op = "float8_weight_only_linear";
  check_concrete(input, check_float8_weight(weight, scale, false, op), bias, op);
  const at::Tensor w = weight.to(at::kFloat).mul_(scale).to(input.scalar_type());
  return unflatten_rows(add_bias(at::linear(flatten_rows(input), w), bias), input);
}

at::Tensor float8_dynamic_activation_linear_ref(const at::Tensor& input, const at::Tensor& weight,
                                                const at::Tensor& weight_scale, c10::string_view granularity,
                                                const OptTensor& bias) {
  const char* op = "float8_dynamic_activation_linear";
  TORCH_CHECK(granularity == "tensor" || granularity == "row", op, ": granularity must be 'tensor' or 'row', got '",
              granularity, "'");
  check_concrete(input, check_float8_weight(weight, weight_scale, true, op), bias, op);
  auto [xq, x_scale] = core::cast_to_float8(flatten_rows(input), at::kFloat8_e4m3fn, std::string(granularity));
  const at::Tensor w_scale = weight_scale.numel() == 1 ? weight_scale.reshape({}) : weight_scale.reshape({1, -1});
  // fp8 tensor cores on CUDA (lowbit::scaled_mm checks the GPU); float32 emulation elsewhere.
  const at::Tensor y = core::scaled_mm(xq, weight.t(), x_scale, w_scale, std::nullopt, input.scalar_type(),
                                       /*use_fast_accum=*/false, /*emulate=*/!input.is_cuda());
  return unflatten_rows(add_bias(y, bias), input);
}

TORCH_LIBRARY_IMPL(lowbit, CompositeExplicitAutograd, m) {
  m.impl("int8_weight_only_linear", &int8_weight_only_linear_ref);
  m.impl("int8_dynamic_activation_int8_linear", &int8_dynamic_activation_int8_linear_ref);
  m.impl("int8_dynamic_activation_int4_linear", &int8_dynamic_activation_int4_linear_ref);
  m.impl("uintx_weight_only_linear", &uintx_weight_only_linear_ref);
  m.impl("fpx_weight_only_linear", &fpx_weight_only_linear_ref);
  m.impl("float8_weight_only_linear", &float8_weight_only_linear_ref);
  m.impl("float8_dynamic_activation_linear", &float8_dynamic_activation_linear_ref);
}

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("int4_pack_tinygemm", &int4_pack_tinygemm_cpu);
  m.impl("int4_weight_only_linear", &int4_weight_only_linear_cpu);
}

}  // namespace lowbit::cpu
