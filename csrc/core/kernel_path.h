// Which implementation ("path") lowbit's ops took: a diagnostic, so tests and benchmarks can tell
// a fast path from its fallback (a GPU test that passes on either proves nothing about speed).
//
// Kernels record their choice on the host when they make it, with relaxed atomics (a few
// nanoseconds; thread-safe). Counts are per process; "last" is the most recent call from any
// thread. A CUDA graph replay records nothing (the host code ran once, at capture).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace lowbit::core {

// Every path of every op family that has more than one. Names: kernel_path_op / kernel_path_name.
enum class KernelPath : int {
  // lowbit::scaled_mm
  ScaledMmEmpty,               // "empty": M, N or K is 0; zeros (plus bias) without a GEMM
  ScaledMmEmulated,            // "emulated": float32 emulation (emulate=True; the CPU kernel)
  ScaledMmTensorwise,          // "cublaslt_tensorwise": cuBLASLt, scalar scales
  ScaledMmOuterVector,         // "cublaslt_outer_vector": cuBLASLt, row-wise scales in its epilogue
  ScaledMmUnitScaleFallback,   // "unit_scale_fallback": cuBLASLt with unit scales, row-wise scales after
  // int8_weight_only_linear, uintx_weight_only_linear, fpx_weight_only_linear (CUDA)
  WeightOnlyEmpty,             // "empty": M or N is 0
  WeightOnlyGemv,              // "gemv": fused dequantize GEMV (M <= 8)
  WeightOnlyWmma,              // "wmma": fused dequantize tensor-core GEMM (8 < M <= 256, bf16 / fp16)
  WeightOnlyDequantCublas,     // "dequantize_cublas": dequantize the weight, then cuBLAS
  // int8_dynamic_activation_int8_linear (CUDA)
  Int8DynamicEmpty,            // "empty": M or N is 0
  Int8DynamicDp4a,             // "dp4a": lowbit's int8 dot-product kernel
  Int8DynamicIntMm,            // "int_mm": at::_int_mm (cuBLAS int8) and the rescale kernel
  // lowbit::semi_sparse_mm (the 2:4 GEMM of the sparse training linears)
  SemiSparseMmReference,       // "reference": the CPU reference (dense GEMM of the checked 2:4 operand)
  SemiSparseMmEmpty,           // "empty": M, N or K is 0
  SemiSparseMmCusparselt,      // "cusparselt": cuSPARSELt compress + 2:4 GEMM, no padding
  SemiSparseMmCusparseltPadded,  // "cusparselt_padded": the same with a dim zero-padded to the rule's multiple
  Count
};

// The op family a path belongs to: "scaled_mm", "weight_only_linear", "int8_dynamic_linear" or
// "semi_sparse_mm".
const char* kernel_path_op(KernelPath p);
// The path's name within its family (see the enum).
const char* kernel_path_name(KernelPath p);

// Records one call that took path p (kernels call this; cheap, never throws).
void record_kernel_path(KernelPath p) noexcept;

// The path of the most recent call of op family `op` ("none" before the first). Unknown `op`
// is an error that lists the families.
std::string last_kernel_path(const std::string& op);

// Calls per "op/path" since the process started or the last reset; every path is listed.
std::map<std::string, int64_t> kernel_path_counts();

// Zeroes the counts and forgets the last paths.
void reset_kernel_path_counts();

// last_kernel_path("scaled_mm"): "cublaslt_outer_vector", "cublaslt_tensorwise",
// "unit_scale_fallback", "emulated", "empty" or "none".
std::string scaled_mm_last_path();

}  // namespace lowbit::core
