// Argument checks and output shapes of the quantized linear ops, shared by Meta and reference kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <optional>
#include <vector>

namespace lowbit::ops {

inline void check_qlinear_input(const at::Tensor& input, const c10::SymInt& in_features, const char* op) {
  const auto t = input.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kBFloat16 || t == at::kHalf, op, ": input dtype ", t,
              " is not supported; allowed: torch.float32, torch.bfloat16, torch.float16");
  TORCH_CHECK(input.dim() >= 1, op, ": input must have at least one dim");
  TORCH_SYM_CHECK(input.sym_size(-1).sym_eq(in_features), op, ": input's last dim ", input.sym_size(-1),
                  " differs from the weight's in_features ", in_features);
}

inline void check_qlinear_dtype(const at::Tensor& t, at::ScalarType expected, const char* what, const char* op) {
  TORCH_CHECK(t.scalar_type() == expected, op, ": ", what, " must be ", expected, ", got ", t.scalar_type());
}

inline void check_qlinear_bias(const std::optional<at::Tensor>& bias, const c10::SymInt& out_features,
                               const char* op) {
  if (!bias.has_value()) return;
  TORCH_CHECK(bias->dim() == 1, op, ": bias must be 1-D, got shape ", bias->sym_sizes());
  TORCH_SYM_CHECK(bias->sym_size(0).sym_eq(out_features), op, ": bias has ", bias->sym_size(0),
                  " entries, the weight has out_features ", out_features);
}

// (..., K) -> (..., N)
inline std::vector<c10::SymInt> qlinear_output_shape(const at::Tensor& input, const c10::SymInt& out_features) {
  std::vector<c10::SymInt> shape(input.sym_sizes().begin(), input.sym_sizes().end());
  shape.back() = out_features;
  return shape;
}

// Group sizes must divide K (checked symbolically so Meta rejects what the kernels reject).
inline void check_group_size(int64_t group_size, const c10::SymInt& in_features, const char* op) {
  TORCH_CHECK(group_size >= 1, op, ": group_size must be >= 1, got ", group_size);
  TORCH_SYM_CHECK((in_features % group_size).sym_eq(0), op, ": group_size ", group_size,
                  " does not divide in_features ", in_features);
}

}  // namespace lowbit::ops

namespace lowbit::ops {

// (out_features, in_features) of each format, after checking its parts.
struct QLinearDims {
  c10::SymInt n;
  c10::SymInt k;
};

// int8 (N, K) weight with a per-channel scale (N,) or (N, 1).
inline QLinearDims check_int8_weight(const at::Tensor& weight, const at::Tensor& scale, const char* op) {
  TORCH_CHECK(weight.dim() == 2, op, ": weight must be 2-D (N, K), got shape ", weight.sym_sizes());
  check_qlinear_dtype(weight, at::kChar, "weight", op);
  check_qlinear_dtype(scale, at::kFloat, "scale", op);
  TORCH_SYM_CHECK(scale.sym_numel().sym_eq(weight.sym_size(0)), op, ": scale must hold one value per output channel (",
                  weight.sym_size(0), "), got shape ", scale.sym_sizes());
  return {weight.sym_size(0), weight.sym_size(1)};
}

// Group-wise scale / zero point (N, K / group_size) beside a packed weight (N, K * bits / 8).
inline QLinearDims check_packed_groupwise(const at::Tensor& packed, const at::Tensor& scale,
                                          const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                          const char* op) {
  TORCH_CHECK(bits >= 1 && bits <= 8, op, ": bits must be in 1..8, got ", bits);
  TORCH_CHECK(packed.dim() == 2, op, ": packed weight must be 2-D (N, K * bits / 8), got shape ", packed.sym_sizes());
  check_qlinear_dtype(packed, at::kByte, "packed weight", op);
  check_qlinear_dtype(scale, at::kFloat, "scale", op);
  check_qlinear_dtype(zero_point, at::kInt, "zero_point", op);
  const c10::SymInt n = packed.sym_size(0);
  const c10::SymInt k = packed.sym_size(1) * 8 / bits;
  check_group_size(group_size, k, op);
  TORCH_CHECK(scale.dim() == 2 && zero_point.dim() == 2, op, ": scale and zero_point must be (N, K / group_size)");
  TORCH_SYM_CHECK(scale.sym_size(0).sym_eq(n).sym_and(scale.sym_size(1).sym_eq(k / group_size)), op, ": scale shape ",
                  scale.sym_sizes(), " does not match (N, K / group_size) = (", n, ", ", k / group_size, ")");
  TORCH_SYM_CHECK(zero_point.sym_size(0).sym_eq(n).sym_and(zero_point.sym_size(1).sym_eq(k / group_size)), op,
                  ": zero_point shape ", zero_point.sym_sizes(), " does not match scale's ", scale.sym_sizes());
  return {n, k};
}

// int4_pack_tinygemm's arguments: uint8 codes (N, K), a tile count tinygemm has, N a multiple of
// `n_multiple` (aten's packer: 16 on CPUs, 8 on CUDA; quantize_'s shape rule takes 16 for both).
inline void check_int4_pack_args(const at::Tensor& codes, int64_t inner_k_tiles, int64_t n_multiple) {
  TORCH_CHECK(codes.dim() == 2 && codes.scalar_type() == at::kByte, "int4_pack_tinygemm: codes must be uint8 (N, K), "
              "got ", codes.scalar_type(), " of shape ", codes.sizes());
  TORCH_CHECK(inner_k_tiles == 2 || inner_k_tiles == 4 || inner_k_tiles == 8,
              "int4_pack_tinygemm: inner_k_tiles must be 2, 4 or 8, got ", inner_k_tiles);
  TORCH_CHECK(codes.size(1) % (inner_k_tiles * 16) == 0 && codes.size(0) % n_multiple == 0, "int4_pack_tinygemm: "
              "needs N % ", n_multiple, " == 0 and K % (inner_k_tiles * 16) == 0 on ", codes.device().type(),
              ", got (N, K) = ", codes.sizes());
}

inline QLinearDims check_int4_tinygemm(const at::Tensor& packed, const at::Tensor& scale_and_zeros, int64_t group_size,
                                       const char* op) {
  TORCH_CHECK(scale_and_zeros.dim() == 3 && scale_and_zeros.sym_size(2) == 2, op,
              ": scale_and_zeros must be (K / group_size, N, 2), got shape ", scale_and_zeros.sym_sizes());
  TORCH_CHECK(group_size == 32 || group_size == 64 || group_size == 128 || group_size == 256, op,
              ": group_size must be 32, 64, 128 or 256 (tinygemm), got ", group_size);
  TORCH_CHECK(packed.scalar_type() == at::kByte || packed.scalar_type() == at::kInt, op,
              ": packed weight must come from int4_pack_tinygemm (uint8 on CPU, int32 on CUDA), got ",
              packed.scalar_type());
  return {scale_and_zeros.sym_size(1), scale_and_zeros.sym_size(0) * group_size};
}

inline QLinearDims check_fpx_weight(const at::Tensor& packed, const at::Tensor& scale, int64_t ebits, int64_t mbits,
                                    const char* op) {
  TORCH_CHECK(ebits >= 1 && mbits >= 0 && 1 + ebits + mbits <= 8, op, ": invalid fpx format e", ebits, "m", mbits);
  TORCH_CHECK(packed.dim() == 2, op, ": packed weight must be 2-D (N, K * bits / 8), got shape ", packed.sym_sizes());
  check_qlinear_dtype(packed, at::kByte, "packed weight", op);
  check_qlinear_dtype(scale, at::kFloat, "scale", op);
  TORCH_SYM_CHECK(scale.sym_numel().sym_eq(packed.sym_size(0)), op, ": scale must hold one value per row (",
                  packed.sym_size(0), "), got shape ", scale.sym_sizes());
  return {packed.sym_size(0), packed.sym_size(1) * 8 / (1 + ebits + mbits)};
}

inline QLinearDims check_float8_weight(const at::Tensor& weight, const at::Tensor& scale, bool allow_tensorwise,
                                       const char* op) {
  TORCH_CHECK(weight.dim() == 2, op, ": weight must be 2-D (N, K), got shape ", weight.sym_sizes());
  TORCH_CHECK(weight.scalar_type() == at::kFloat8_e4m3fn || weight.scalar_type() == at::kFloat8_e5m2, op,
              ": weight must be float8_e4m3fn or float8_e5m2, got ", weight.scalar_type());
  check_qlinear_dtype(scale, at::kFloat, "scale", op);
  const bool rowwise = scale.dim() == 2 && scale.sym_size(0) == weight.sym_size(0) && scale.sym_size(1) == 1;
  TORCH_CHECK(rowwise || (allow_tensorwise && scale.sym_numel() == 1), op, ": weight scale must have shape (N, 1)",
              allow_tensorwise ? " or hold one value" : "", ", got ", scale.sym_sizes());
  return {weight.sym_size(0), weight.sym_size(1)};
}

// The Meta kernels' output: checks input and bias against the weight's dims, (..., K) -> (..., N).
inline at::Tensor qlinear_meta_output(const at::Tensor& input, const QLinearDims& d,
                                      const std::optional<at::Tensor>& bias, const char* op) {
  check_qlinear_input(input, d.k, op);
  check_qlinear_bias(bias, d.n, op);
  return at::empty_symint(qlinear_output_shape(input, d.n), input.options());
}

}  // namespace lowbit::ops
