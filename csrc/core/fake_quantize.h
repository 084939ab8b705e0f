// lowbit::core::fake_quantize_affine — QAT's fake quantization with a straight-through gradient.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace lowbit::core {

// dequantize_affine(quantize_affine(x, choose_qparams_affine(x))) in float32 (the same three ops
// quantize_ uses), returned in x's dtype. Gradient: straight-through (grad_input = grad_output),
// a C++ autograd formula, so C++ training loops get it too.
at::Tensor fake_quantize_affine(const at::Tensor& input, at::IntArrayRef block_size, const std::string& qdtype,
                                const std::string& mapping = "symmetric", const std::string& zero_point_domain = "int");

}  // namespace lowbit::core
