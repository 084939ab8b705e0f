// CPU kernel of lowbit::scaled_mm: the float32 emulation (CPUs have no fp8 GEMM).
#include <ATen/TensorOperators.h>
#include <ATen/ops/matmul.h>
#include <torch/library.h>

#include <lowbit/core/kernel_path.h>
#include <lowbit/ops/scaled_mm_checks.h>

#include "scaled_mm_reference.h"

namespace lowbit::cpu {

at::Tensor scaled_mm_reference(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                               const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                               at::ScalarType out_dtype) {
  at::Tensor out = at::matmul(a.to(at::kFloat), b.to(at::kFloat));
  // Explicit extents: reshape cannot infer a -1 for the empty scales of M = 0 or N = 0.
  out = out * scale_a.reshape({scale_a.numel() == 1 ? 1 : a.size(0), 1}) *
        scale_b.reshape({1, scale_b.numel() == 1 ? 1 : b.size(1)});
  if (bias.has_value()) out = out + bias->to(at::kFloat);
  return out.to(out_dtype);
}

namespace {

at::Tensor scaled_mm_cpu(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                         const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                         std::optional<at::ScalarType> out_dtype, bool use_fast_accum, bool emulate) {
  const at::ScalarType out = ops::check_scaled_mm_args(a, b, scale_a, scale_b, bias, out_dtype);
  TORCH_CHECK(emulate, "scaled_mm: the CPU has no fp8 GEMM; pass emulate=True (Float8LinearConfig(emulate=True)) "
              "for the float32 emulation, or move the tensors to a GPU with fp8 tensor cores (sm_89+)");
  const bool empty = ops::classify_scaled_mm(a.size(0), b.size(1), a.size(1)) != ops::ScaledMmEmpty::None;
  core::record_kernel_path(empty ? core::KernelPath::ScaledMmEmpty : core::KernelPath::ScaledMmEmulated);
  return scaled_mm_reference(a, b, scale_a, scale_b, bias, out);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("scaled_mm", &scaled_mm_cpu); }

}  // namespace lowbit::cpu
