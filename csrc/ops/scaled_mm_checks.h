// Argument checks of lowbit::scaled_mm, shared by its Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/ops/dtype_name.h>

#include <cstdint>
#include <optional>
#include <utility>

namespace lowbit::ops {

inline bool is_float8(at::ScalarType t) { return t == at::kFloat8_e4m3fn || t == at::kFloat8_e5m2; }

// Returns the output dtype.
inline at::ScalarType check_scaled_mm_args(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                                           const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                                           std::optional<at::ScalarType> out_dtype) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2, "scaled_mm: a and b must be 2-D, got shapes ", a.sym_sizes(), " and ",
              b.sym_sizes());
  TORCH_SYM_CHECK(a.sym_size(1).sym_eq(b.sym_size(0)), "scaled_mm: inner dims differ: a is ", a.sym_sizes(),
                  ", b is ", b.sym_sizes());
  check_dtype(a.scalar_type(), {at::kFloat8_e4m3fn, at::kFloat8_e5m2}, "scaled_mm", "a dtype");
  check_dtype(b.scalar_type(), {at::kFloat8_e4m3fn, at::kFloat8_e5m2}, "scaled_mm", "b dtype");
  TORCH_CHECK(!(a.scalar_type() == at::kFloat8_e5m2 && b.scalar_type() == at::kFloat8_e5m2),
              "scaled_mm: e5m2 x e5m2 is not supported (fp8 tensor cores take e4m3 on at least one side)");
  check_dtype(scale_a.scalar_type(), {at::kFloat}, "scaled_mm", "scale_a dtype");
  check_dtype(scale_b.scalar_type(), {at::kFloat}, "scaled_mm", "scale_b dtype");
  const bool a_tensorwise = scale_a.sym_numel() == 1;
  const bool b_tensorwise = scale_b.sym_numel() == 1;
  TORCH_CHECK(a_tensorwise || (scale_a.dim() == 2 && scale_a.sym_size(0) == a.sym_size(0) && scale_a.sym_size(1) == 1),
              "scaled_mm: scale_a must hold one value or have shape (M, 1) = (", a.sym_size(0), ", 1), got ",
              scale_a.sym_sizes());
  TORCH_CHECK(b_tensorwise || (scale_b.dim() == 2 && scale_b.sym_size(0) == 1 && scale_b.sym_size(1) == b.sym_size(1)),
              "scaled_mm: scale_b must hold one value or have shape (1, N) = (1, ", b.sym_size(1), "), got ",
              scale_b.sym_sizes());
  const at::ScalarType out = out_dtype.value_or(at::kBFloat16);
  check_dtype(out, {at::kBFloat16, at::kHalf, at::kFloat}, "scaled_mm", "out_dtype");
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->sym_size(0) == b.sym_size(1), "scaled_mm: bias must have shape (N,) = (",
                b.sym_size(1), ",), got ", bias->sym_sizes());
    const at::ScalarType bt = bias->scalar_type();
    TORCH_CHECK(bt == at::kFloat || bt == at::kBFloat16 || bt == at::kHalf, "scaled_mm: bias must be float32, "
                "bfloat16 or float16, got ", bt);
  }
  // A bias on another device would hand the GEMM a pointer it cannot read, so it is checked too.
  const std::pair<const char*, const at::Tensor*> others[] = {
      {"b", &b}, {"scale_a", &scale_a}, {"scale_b", &scale_b}, {"bias", bias.has_value() ? &*bias : nullptr}};
  for (const auto& [name, t] : others) {
    if (t == nullptr) continue;
    TORCH_CHECK(t->device() == a.device(), "scaled_mm: all tensors must be on one device: a is on ", a.device(),
                ", ", name, " on ", t->device());
  }
  return out;
}

// Problems with no products to sum. Every kernel returns early for them, as the reference computes
// them: an (M, N) result of zeros (times the scales) plus the bias when K = 0, an empty one when
// M or N is 0. cuBLASLt rejects zero extents, so the CUDA kernel must not hand them on.
enum class ScaledMmEmpty { None, EmptyOutput, ZeroK };

inline ScaledMmEmpty classify_scaled_mm(int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return ScaledMmEmpty::EmptyOutput;
  if (k == 0) return ScaledMmEmpty::ZeroK;
  return ScaledMmEmpty::None;
}

}  // namespace lowbit::ops
