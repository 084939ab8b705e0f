// Argument checks of the fpx ops, shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/core/fpx_format.h>

namespace lowbit::ops {

inline bool is_float_output_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf;
}

inline void check_fpx_encode_args(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  core::check_fpx_format(ebits, mbits);
  TORCH_CHECK(is_float_output_dtype(x.scalar_type()), "fpx_encode: input dtype ", x.scalar_type(),
              " is not supported; allowed: torch.float32, torch.bfloat16, torch.float16");
}

inline void check_fpx_decode_args(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  core::check_fpx_format(ebits, mbits);
  TORCH_CHECK(codes.scalar_type() == at::kByte, "fpx_decode: codes must be torch.uint8, got ", codes.scalar_type());
  TORCH_CHECK(is_float_output_dtype(dtype), "fpx_decode: output dtype ", dtype,
              " is not supported; allowed: torch.float32, torch.bfloat16, torch.float16");
}

}  // namespace lowbit::ops
