// Argument checks of lowbit::scaled_mm, shared by its Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/ops/dtype_name.h>

#include <optional>

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
    check_dtype(bias->scalar_type(), {at::kBFloat16, at::kHalf, at::kFloat}, "scaled_mm", "bias dtype");
    TORCH_CHECK(bias->device() == a.device(), "scaled_mm: bias must be on a's device ", a.device(), ", got ",
                bias->device());
  }
  for (const at::Tensor* t : {&b, &scale_a, &scale_b}) {
    TORCH_CHECK(t->device() == a.device(), "scaled_mm: all tensors must be on one device, got ", a.device(), " and ",
                t->device());
  }
  return out;
}

}  // namespace lowbit::ops
