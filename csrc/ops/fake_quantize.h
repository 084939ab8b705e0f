// The composite forward of lowbit::fake_quantize_affine (internal): choose_qparams_affine,
// quantize_affine and dequantize_affine one after the other, through the dispatcher. It is the
// definition the fused CPU kernel (csrc/cpu/fake_quantize.cpp) equals, and its fallback.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

namespace lowbit::ops {

at::Tensor fake_quantize_composite(const at::Tensor& input, at::IntArrayRef block_size, c10::string_view qdtype,
                                   c10::string_view mapping, c10::string_view zero_point_domain);

}  // namespace lowbit::ops
