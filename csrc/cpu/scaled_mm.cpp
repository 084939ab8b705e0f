// CPU kernel of lowbit::scaled_mm: the float32 emulation (CPUs have no fp8 GEMM). The reference is
// scaled_mm_reference (ATen ops, device-generic, also CUDA's emulate=true path); with the
// vectorized kernels the same computation runs as: a table conversion of each fp8 operand, the
// same float32 GEMM (at::mm), and one fused epilogue pass, equal to the reference bit for bit.
#include <ATen/TensorOperators.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <lowbit/core/kernel_path.h>
#include <lowbit/cpu/vec/kernels.h>
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

// An fp8 matrix as float32 in the same layout (a transposed operand stays transposed, so at::mm
// sees what the reference's .to(kFloat) gives it).
at::Tensor float8_as_float(const at::Tensor& t, const vec::Kernels& k) {
  if (!t.is_contiguous() && t.dim() == 2 && t.t().is_contiguous()) return float8_as_float(t.t(), k).t();
  const at::Tensor c = t.contiguous();
  at::Tensor out = at::empty(c.sizes(), c.options().dtype(at::kFloat));
  k.float8_to_float(static_cast<const uint8_t*>(c.const_data_ptr()), c.numel(), c.scalar_type() == at::kFloat8_e5m2,
                    out.data_ptr<float>());
  return out;
}

at::Tensor scaled_mm_fast(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                          const at::Tensor& scale_b, const std::optional<at::Tensor>& bias, at::ScalarType out_dtype,
                          const vec::Kernels& k) {
  at::Tensor acc = at::mm(float8_as_float(a, k), float8_as_float(b, k)).contiguous();
  const at::Tensor sa = scale_a.contiguous(), sb = scale_b.contiguous();
  const at::Tensor bias_f = bias.has_value() ? bias->to(at::kFloat).contiguous() : at::Tensor();
  at::Tensor out = out_dtype == at::kFloat ? acc : at::empty(acc.sizes(), acc.options().dtype(out_dtype));
  k.scaled_mm_epilogue(acc.data_ptr<float>(), acc.size(0), acc.size(1), sa.data_ptr<float>(), sa.numel() == 1 ? 0 : 1,
                       sb.data_ptr<float>(), sb.numel() == 1 ? 0 : 1,
                       bias_f.defined() ? bias_f.data_ptr<float>() : nullptr, out.data_ptr(), out_dtype);
  return out;
}

at::Tensor scaled_mm_cpu(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a,
                         const at::Tensor& scale_b, const std::optional<at::Tensor>& bias,
                         std::optional<at::ScalarType> out_dtype, bool use_fast_accum, bool emulate) {
  const at::ScalarType out = ops::check_scaled_mm_args(a, b, scale_a, scale_b, bias, out_dtype);
  TORCH_CHECK(emulate, "scaled_mm: the CPU has no fp8 GEMM; pass emulate=True (Float8LinearConfig(emulate=True)) "
              "for the float32 emulation, or move the tensors to a GPU with fp8 tensor cores (sm_89+)");
  const bool empty = ops::classify_scaled_mm(a.size(0), b.size(1), a.size(1)) != ops::ScaledMmEmpty::None;
  core::record_kernel_path(empty ? core::KernelPath::ScaledMmEmpty : core::KernelPath::ScaledMmEmulated);
  if (const vec::Kernels* k = vec::kernels()) return scaled_mm_fast(a, b, scale_a, scale_b, bias, out, *k);
  return scaled_mm_reference(a, b, scale_a, scale_b, bias, out);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("scaled_mm", &scaled_mm_cpu); }

}  // namespace lowbit::cpu
