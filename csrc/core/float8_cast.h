// lowbit::core::cast_to_float8 — dynamic float8 quantization with on-device scales.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>

namespace lowbit::core {

// Casts x (float32 / bfloat16 / float16) to `dtype` (Float8_e4m3fn or Float8_e5m2) with
// dynamic scaling, returning (data, scale) with data.float() * scale ~= x.
//   granularity "tensor": scale shape ()
//               "row":    one scale per row of the last two dims, shape (..., rows, 1)
//               "column": one scale per column of the last two dims, shape (..., 1, cols)
// scale = max(amax, 1e-12) / max_finite(dtype), rounded up to a power of 2 when
// power_of_2_scale, amax over the finite values. Saturating: finite input never gives NaN, ±inf
// gives ±max_finite, NaN stays NaN. No host synchronization.
std::tuple<at::Tensor, at::Tensor> cast_to_float8(const at::Tensor& x, at::ScalarType dtype,
                                                  const std::string& granularity = "tensor",
                                                  bool power_of_2_scale = false);

// Largest finite value of a float8 dtype (448 for e4m3fn, 57344 for e5m2); errors otherwise.
float float8_max_finite(at::ScalarType dtype);

}  // namespace lowbit::core
