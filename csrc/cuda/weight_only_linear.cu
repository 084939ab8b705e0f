// CUDA kernels of the weight-only quantized linears: int8_weight_only_linear,
// uintx_weight_only_linear and fpx_weight_only_linear, y = x @ dequant(W)^T (+ bias), with the
// weight decoded on the fly instead of materialized. One templated design serves the three
// formats; they differ only in how a code becomes a weight (the Decoder structs) and in the
// epilogue (int8 scales output columns, as its reference does).
//
// Files: this one checks the arguments, picks the path (rules in quantized_linear_paths.h, tested
// on the CPU), records it (lowbit::core::last_kernel_path("weight_only_linear")) and registers the
// ops; weight_only_gemv.cuh (instantiated per format by weight_only_gemv_*.cu), weight_only_gemm.cu
// and weight_only_dequantize.cu hold the paths;
// weight_only_linear.cuh (formats, Problem, launchers) and weight_only_decode.cuh (decoders,
// epilogue) are shared.
//
// Paths (x flattened to (M, K); W is (N, K) logically), by their recorded names:
//   gemv     M <= 8, chunked shapes (below), any input dtype: a block owns 4 output columns;
//            each thread streams 32-code chunks of those 4 packed rows as `bits` aligned 32-bit
//            words, decodes them with shifts (core::chunk_code) and multiplies with x in float32
//            registers; a block reduction and the epilogue finish each column. Every weight byte
//            is read once. fpx looks its weights up in per-column tables of all 2^bits values.
//   wmma     8 < M <= 256, bf16 / fp16 input, chunked shapes: 64 x 128 output tiles; per 64-wide
//            K step the block decodes its 128 packed rows into shared memory as bf16 / fp16 and
//            multiplies them with the x tile on tensor cores (WMMA 16x16x16, float32 accumulators).
//            Few tiles (small M) split K across blocks into a float32 workspace, summed in order
//            by a second kernel that runs the epilogue.
//   dequantize_cublas  everything else (float32 input with M > 8, M > 256, unchunked shapes): a kernel
//            dequantizes W into the input dtype, then at::linear (cuBLAS), then the reference's
//            own epilogue ops. Unchunked shapes at M <= 256 warn once (a performance cliff the
//            user can avoid). The cut at M = 256 (kFusedGemmMaxM) is an estimate, not a
//            measurement: past it the GEMM is compute-bound, cuBLAS beats this WMMA kernel, and
//            the fused kernel's decode, repeated for every 64-row tile, costs more than writing the
//            dequantized weight once. benchmarks/bench_quantize.py times both sides of it.
//   Chunked: K % 32 == 0 (a packed row is whole words: 32 codes are `bits` words), the packed
//   weight contiguous and 16-byte aligned, and for uintx group_size % 32 == 0 (one scale and
//   zero point per chunk).
//
// Numerics, against the CPU reference (csrc/cpu/quantized_linear_reference.cpp): every weight
// the kernels multiply is the reference's dequantized weight bit for bit (int8: the code itself,
// exact in any dtype; uintx: (float(q) - zp) * scale, fpx: fpx_decode(q) * scale, each in float32
// and rounded once to the input dtype). Products accumulate in float32 in a different order than
// the CPU GEMM, and the epilogue repeats the reference's roundings: the GEMM result rounded to the
// input dtype, then (int8) times scale.to(dtype) rounded, then + bias.to(dtype) rounded. So a
// one-hot x reproduces the reference exactly, and otherwise the difference is the float32
// summation order plus one rounding of the output.
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContextLight.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <optional>

#include <lowbit/core/fpx_format.h>
#include <lowbit/core/kernel_path.h>
#include <lowbit/ops/quantized_linear_checks.h>

#include "launch.cuh"
#include "quantized_linear_paths.h"
#include "weight_only_linear.cuh"

namespace lowbit::cuda::weight_only {
namespace {

using OptTensor = std::optional<at::Tensor>;

// Why the fused kernels cannot take this weight, or nullptr when they can ("chunked" above).
const char* unchunked_reason(const Problem& p, Fmt f) {
  return lowbit::cuda::unchunked_reason(p.k, p.bits, f == Fmt::Uintx, p.fa.group_size, p.packed.is_contiguous(),
                                        p.packed.size(1), is_aligned(p.packed.const_data_ptr(), 16));
}

// Shared by the three ops: picks the path (quantized_linear_paths.h; see the top of the file),
// records it, and returns y as (..., N).
template <Fmt F>
at::Tensor weight_only_linear(const at::Tensor& input, Problem p, const char* op) {
  const at::ScalarType dtype = input.scalar_type();
  const bool tensor_cores = wmma_capable(dtype == at::kFloat, at::cuda::getCurrentDeviceProperties()->major);
  const char* reason = unchunked_reason(p, F);
  const bool chunked = reason == nullptr;
  if (warns_unchunked(p.m, p.n, chunked)) {
    TORCH_WARN_ONCE(op, ": ", reason, ", so the fused CUDA kernels cannot read it word by word; this call (and "
                    "others like it) dequantizes the whole weight and runs a dense GEMM instead, which is correct "
                    "but slower at small batch sizes");
  }
  at::Tensor y;
  switch (choose_weight_only_path(p.m, p.n, chunked, tensor_cores)) {
    case WeightOnlyPath::Empty:
      core::record_kernel_path(core::KernelPath::WeightOnlyEmpty);
      y = at::empty({p.m, p.n}, p.x.options());
      break;
    case WeightOnlyPath::Gemv:
      core::record_kernel_path(core::KernelPath::WeightOnlyGemv);
      y = at::empty({p.m, p.n}, p.x.options());
      launch_gemv_for<F>(p, y);
      break;
    case WeightOnlyPath::Wmma:
      core::record_kernel_path(core::KernelPath::WeightOnlyWmma);
      y = at::empty({p.m, p.n}, p.x.options());
      launch_wmma_gemm(p, F, y);
      break;
    case WeightOnlyPath::DequantCublas:
      // The reference's own steps on a weight dequantized in one pass.
      core::record_kernel_path(core::KernelPath::WeightOnlyDequantCublas);
      y = at::linear(p.x, dequantize_weight(p, F, dtype));
      if (p.col_scale.defined()) y.mul_(p.col_scale.reshape({1, -1}).to(dtype));
      if (p.bias.defined()) y.add_(p.bias);
      break;
  }
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  shape.back() = p.n;
  return y.reshape(shape);
}

// Checks shared by the three ops (the reference's, plus one device), and the common Problem parts.
Problem make_problem(const at::Tensor& input, const at::Tensor& packed, const ops::QLinearDims& d,
                     std::initializer_list<const at::Tensor*> parts, const OptTensor& bias, const char* op) {
  ops::check_qlinear_input(input, d.k, op);
  ops::check_qlinear_bias(bias, d.n, op);
  for (const at::Tensor* t : parts)
    TORCH_CHECK(t->device() == input.device(), op, ": all tensors must be on the input's device ", input.device(),
                ", got one on ", t->device());
  TORCH_CHECK(!bias.has_value() || bias->device() == input.device(), op, ": bias is on ", bias->device(),
              ", the input on ", input.device());
  Problem p;
  p.k = d.k.expect_int();
  p.n = d.n.expect_int();
  p.x = input.reshape({-1, p.k}).contiguous();
  if (!is_aligned(p.x.const_data_ptr(), 16)) p.x = p.x.clone();  // a view at an odd offset: vector loads need 16
  p.m = p.x.size(0);
  p.packed = packed;
  if (bias.has_value()) p.bias = bias->to(input.scalar_type()).contiguous();
  return p;
}

at::Tensor int8_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                                        const OptTensor& bias) {
  const char* op = "int8_weight_only_linear";
  const c10::cuda::CUDAGuard guard(input.device());
  Problem p = make_problem(input, weight, ops::check_int8_weight(weight, scale, op), {&weight, &scale}, bias, op);
  p.bits = 8;
  p.col_scale = scale.reshape({-1}).contiguous();
  return weight_only_linear<Fmt::Int8>(input, std::move(p), op);
}

at::Tensor uintx_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                         const at::Tensor& zero_point, int64_t bits, int64_t group_size,
                                         const OptTensor& bias) {
  const char* op = "uintx_weight_only_linear";
  const c10::cuda::CUDAGuard guard(input.device());
  const ops::QLinearDims d = ops::check_packed_groupwise(packed, scale, zero_point, bits, group_size, op);
  Problem p = make_problem(input, packed, d, {&packed, &scale, &zero_point}, bias, op);
  p.bits = static_cast<int>(bits);
  const at::Tensor s = scale.contiguous(), zp = zero_point.contiguous();
  p.fa.scale = s.const_data_ptr<float>();
  p.fa.zero_point = zp.const_data_ptr<int32_t>();
  p.fa.groups_per_row = p.k / group_size;
  p.fa.group_size = group_size;
  return weight_only_linear<Fmt::Uintx>(input, std::move(p), op);  // s and zp outlive the launches
}

at::Tensor fpx_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& packed, const at::Tensor& scale,
                                       int64_t ebits, int64_t mbits, const OptTensor& bias) {
  const char* op = "fpx_weight_only_linear";
  const c10::cuda::CUDAGuard guard(input.device());
  const ops::QLinearDims d = ops::check_fpx_weight(packed, scale, ebits, mbits, op);
  Problem p = make_problem(input, packed, d, {&packed, &scale}, bias, op);
  core::check_fpx_format(ebits, mbits);  // the reference's fpx_decode rejects e4m3 / e5m2 the same way
  p.bits = static_cast<int>(1 + ebits + mbits);
  const at::Tensor s = scale.reshape({-1}).contiguous();
  p.fa.scale = s.const_data_ptr<float>();
  p.fa.ebits = static_cast<int>(ebits);
  p.fa.mbits = static_cast<int>(mbits);
  return weight_only_linear<Fmt::Fpx>(input, std::move(p), op);
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  m.impl("int8_weight_only_linear", &int8_weight_only_linear_cuda);
  m.impl("uintx_weight_only_linear", &uintx_weight_only_linear_cuda);
  m.impl("fpx_weight_only_linear", &fpx_weight_only_linear_cuda);
}

}  // namespace lowbit::cuda::weight_only
