// lowbit::core::fpx_encode / fpx_decode — sub-byte floating point codes (see core/fpx_format.h).
#pragma once

#include <ATen/core/Tensor.h>

namespace lowbit::core {

// Encodes floating x into fpX_e{ebits}m{mbits} codes, one per uint8 (same shape as x):
// round-to-nearest-even, saturating, subnormals kept. 1 <= ebits, 0 <= mbits, 1+ebits+mbits <= 8,
// e4m3 and e5m2 excluded (use cast_to_float8).
at::Tensor fpx_encode(const at::Tensor& x, int64_t ebits, int64_t mbits);

// Decodes fpX codes (uint8) to `dtype` (float32, bfloat16 or float16); exact in float32.
at::Tensor fpx_decode(const at::Tensor& codes, int64_t ebits, int64_t mbits,
                      at::ScalarType dtype = at::kFloat);

}  // namespace lowbit::core
