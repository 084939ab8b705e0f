// Argument checks of lowbit::compress_2_4 / decompress_2_4, shared by their Meta, CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

namespace lowbit::ops {

inline bool is_sparse_2_4_value_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf || t == at::kChar;
}

inline void check_compress_2_4_args(const at::Tensor& x) {
  TORCH_CHECK(is_sparse_2_4_value_dtype(x.scalar_type()), "compress_2_4: dtype ", x.scalar_type(), " is not supported; "
              "allowed: torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int8");
  TORCH_CHECK(x.dim() == 2, "compress_2_4: input must be 2-D (rows, columns), got shape ", x.sym_sizes());
  TORCH_SYM_CHECK((x.sym_size(1) % 8).sym_eq(0), "compress_2_4: columns (", x.sym_size(1),
                  ") must be a multiple of 8 (two groups of 4 per metadata byte)");
}

inline void check_decompress_2_4_args(const at::Tensor& values, const at::Tensor& meta) {
  TORCH_CHECK(is_sparse_2_4_value_dtype(values.scalar_type()), "decompress_2_4: values dtype ", values.scalar_type(),
              " is not supported; allowed: torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int8");
  TORCH_CHECK(meta.scalar_type() == at::kByte, "decompress_2_4: meta must be torch.uint8, got ", meta.scalar_type());
  TORCH_CHECK(values.dim() == 2 && meta.dim() == 2, "decompress_2_4: values and meta must be 2-D, got shapes ",
              values.sym_sizes(), " and ", meta.sym_sizes());
  const bool fit = values.sym_size(0) == meta.sym_size(0) && values.sym_size(1) % 4 == 0 &&
                   values.sym_size(1) / 4 == meta.sym_size(1);
  TORCH_CHECK(fit, "decompress_2_4: values (rows, cols / 2) and meta (rows, cols / 8) do not fit: got ",
              values.sym_sizes(), " and ", meta.sym_sizes());
  TORCH_CHECK(values.device() == meta.device(), "decompress_2_4: values and meta must be on one device");
}

}  // namespace lowbit::ops
