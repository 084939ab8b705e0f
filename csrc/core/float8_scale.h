// lowbit::core float8 scaling in steps: amax -> (a collective, e.g. an all-reduce MAX) -> scale
// -> cast with that scale. cast_to_float8(x, dtype, "tensor") is these three steps on one tensor;
// split apart they let a sharded weight be cast with the scale of the whole weight (FSDP float8
// all-gather), bit-identical to casting the unsharded weight.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace lowbit::core {

// Absolute maximum of each tensor's finite values (float32 / bfloat16 / float16, all on one device;
// ±inf and NaN skipped, core::float8_amax_term) as a float32 tensor of shape (len(xs),), an empty
// tensor gives 0: the amax that cast_to_float8's "tensor" granularity takes. No host synchronization.
at::Tensor float8_amax(const std::vector<at::Tensor>& xs);

// Elementwise dequantization scales for float32 amaxes: max(amax, 1e-12) / max_finite(dtype),
// rounded up to a power of 2 when power_of_2_scale; the rule cast_to_float8 applies.
at::Tensor float8_amax_to_scale(const at::Tensor& amax, at::ScalarType dtype, bool power_of_2_scale = false);

// x cast to `dtype` (Float8_e4m3fn or Float8_e5m2) with a given one-element float32 scale:
// saturate(x / scale) rounded to nearest even, NaN kept; the cast cast_to_float8 applies once it
// has its scale.
at::Tensor cast_to_float8_with_scale(const at::Tensor& x, const at::Tensor& scale, at::ScalarType dtype);

}  // namespace lowbit::core
