// Argument checks of lowbit::semi_sparse_weight_linear (the sparse24 format's op), shared by its Meta
// kernel and its reference kernel.
#pragma once

#include <ATen/core/Tensor.h>

#include <lowbit/ops/quantized_linear_checks.h>

namespace lowbit::ops {

// values (N, K / 2) float32 / bfloat16 / float16 and meta uint8 (N, K / 8): the compress_2_4 parts.
inline QLinearDims check_semi_sparse_weight(const at::Tensor& values, const at::Tensor& meta, const char* op) {
  const auto t = values.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kBFloat16 || t == at::kHalf, op, ": values dtype ", t,
              " is not supported; allowed: torch.float32, torch.bfloat16, torch.float16");
  check_qlinear_dtype(meta, at::kByte, "meta", op);
  TORCH_CHECK(values.dim() == 2 && meta.dim() == 2, op, ": values (N, K / 2) and meta (N, K / 8) must be 2-D, got "
              "shapes ", values.sym_sizes(), " and ", meta.sym_sizes());
  const bool fit = values.sym_size(0) == meta.sym_size(0) && values.sym_size(1) == meta.sym_size(1) * 4;
  TORCH_CHECK(fit, op, ": values (N, K / 2) and meta (N, K / 8) do not fit: got ", values.sym_sizes(), " and ",
              meta.sym_sizes());
  TORCH_CHECK(values.device() == meta.device(), op, ": values and meta must be on one device, got ", values.device(),
              " and ", meta.device());
  return {values.sym_size(0), values.sym_size(1) * 2};
}

}  // namespace lowbit::ops
