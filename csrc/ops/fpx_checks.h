// Argument checks of the fpx ops, shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/core/fpx_format.h>
#include <lowbit/ops/dtype_name.h>

namespace lowbit::ops {

inline void check_fpx_encode_args(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  core::check_fpx_format(ebits, mbits);
  check_dtype(x.scalar_type(), kFloat32BF16F16, "fpx_encode", "input dtype");
}

inline void check_fpx_decode_args(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  core::check_fpx_format(ebits, mbits);
  check_dtype(codes.scalar_type(), {at::kByte}, "fpx_decode", "codes dtype");
  check_dtype(dtype, kFloat32BF16F16, "fpx_decode", "output dtype");
}

}  // namespace lowbit::ops
