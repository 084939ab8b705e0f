// Argument checks and output shapes of lowbit::cast_to_float8, shared by its Meta, CPU and
// CUDA kernels so every backend rejects the same inputs with the same message.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <vector>

#include <lowbit/core/float8_cast.h>
#include <lowbit/ops/dtype_name.h>

namespace lowbit::ops {

enum class Float8Granularity { Tensor, Row, Column };

inline Float8Granularity check_cast_to_float8_args(const at::Tensor& x, at::ScalarType dtype,
                                                   c10::string_view granularity) {
  check_dtype(x.scalar_type(), kFloat32BF16F16, "cast_to_float8", "input dtype");
  (void)core::float8_max_finite(dtype);  // checks dtype
  Float8Granularity g;
  if (granularity == "tensor") {
    g = Float8Granularity::Tensor;
  } else if (granularity == "row") {
    g = Float8Granularity::Row;
  } else if (granularity == "column") {
    g = Float8Granularity::Column;
  } else {
    TORCH_CHECK(false, "cast_to_float8: unknown granularity '", granularity,
                "'; allowed: 'tensor', 'row', 'column'");
  }
  TORCH_CHECK(g == Float8Granularity::Tensor || x.dim() >= 2, "cast_to_float8: granularity '", granularity,
              "' needs an input with at least 2 dims, got shape ", x.sym_sizes());
  return g;
}

// () for tensor; (..., rows, 1) for row; (..., 1, cols) for column.
inline std::vector<c10::SymInt> float8_scale_shape(c10::SymIntArrayRef sizes, Float8Granularity g) {
  if (g == Float8Granularity::Tensor) return {};
  std::vector<c10::SymInt> shape(sizes.begin(), sizes.end());
  shape[shape.size() - (g == Float8Granularity::Row ? 1 : 2)] = 1;
  return shape;
}

}  // namespace lowbit::ops
