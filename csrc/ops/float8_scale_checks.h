// Argument checks of the float8 scaling-step ops (float8_amax, float8_amax_to_scale,
// cast_to_float8_with_scale), shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/core/float8_cast.h>

namespace lowbit::ops {

inline void check_float8_input_dtype(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf, op,
              ": input dtype ", x.scalar_type(), " is not supported; allowed: torch.float32, torch.bfloat16, "
              "torch.float16");
}

inline void check_float8_amax_args(at::TensorList xs) {
  TORCH_CHECK(!xs.empty(), "float8_amax: needs at least one tensor");
  for (const at::Tensor& x : xs) {
    check_float8_input_dtype("float8_amax", x);
    TORCH_CHECK(x.device() == xs[0].device(), "float8_amax: all tensors must be on one device, got ", xs[0].device(),
                " and ", x.device());
  }
}

inline void check_float8_amax_to_scale_args(const at::Tensor& amax, at::ScalarType dtype) {
  TORCH_CHECK(amax.scalar_type() == at::kFloat, "float8_amax_to_scale: amax must be float32, got ",
              amax.scalar_type());
  (void)core::float8_max_finite(dtype);  // checks dtype
}

inline void check_cast_to_float8_with_scale_args(const at::Tensor& x, const at::Tensor& scale,
                                                 at::ScalarType dtype) {
  check_float8_input_dtype("cast_to_float8_with_scale", x);
  (void)core::float8_max_finite(dtype);
  TORCH_CHECK(scale.scalar_type() == at::kFloat, "cast_to_float8_with_scale: scale must be float32, got ",
              scale.scalar_type());
  TORCH_SYM_CHECK(scale.sym_numel().sym_eq(1), "cast_to_float8_with_scale: scale must hold one value (a "
                  "tensorwise scale), got shape ", scale.sym_sizes());
  TORCH_CHECK(scale.device() == x.device(), "cast_to_float8_with_scale: scale is on ", scale.device(),
              ", x on ", x.device());
}

}  // namespace lowbit::ops
