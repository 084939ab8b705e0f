// Which CUDA path the quantized linears take, in plain C++ (no CUDA headers), so the CPU build
// compiles the rules and GoogleTest checks them (tests/cpp/test_kernel_paths.cpp). The kernels
// (weight_only_*.cu, int8_dynamic_linear.cu) call these and record the choice
// (lowbit::core::KernelPath), so GPU tests can assert which path ran.
#pragma once

#include <cstdint>

namespace lowbit::cuda {

constexpr int kChunk = 32;                  // codes per chunk of a packed row; a chunk is `bits` 32-bit words
constexpr int64_t kGemvMaxM = 8;            // the fused GEMV serves M <= 8
constexpr int64_t kFusedGemmMaxM = 256;     // the fused WMMA GEMM serves 8 < M <= 256 (an estimate; see
                                            // weight_only_linear.cu and benchmarks/bench_quantize.py)
constexpr int64_t kIntMmMinM = 17;          // at::_int_mm (cuBLAS int8) needs M > 16

// Why the fused weight-only kernels cannot read a packed weight word by word, or nullptr when they
// can ("chunked"): K a multiple of 32 (a packed row is whole words), for uintx a group_size that is
// a multiple of 32 (one scale and zero point per chunk), and the packed weight a contiguous,
// 16-byte aligned (N, K * bits / 8) tensor.
inline const char* unchunked_reason(int64_t k, int bits, bool uintx, int64_t group_size, bool packed_contiguous,
                                    int64_t packed_row_bytes, bool packed_aligned16) {
  if (k % kChunk != 0) return "in_features is not a multiple of 32";
  if (uintx && group_size % kChunk != 0) return "group_size is not a multiple of 32";
  if (!packed_contiguous || packed_row_bytes * 8 != k * bits || !packed_aligned16)
    return "the packed weight is not a contiguous, 16-byte aligned (N, K * bits / 8) tensor";
  return nullptr;
}

// Tensor cores for the fused GEMM: bf16 / fp16 input on sm_80 or newer.
inline bool wmma_capable(bool float32_input, int sm_major) { return !float32_input && sm_major >= 8; }

enum class WeightOnlyPath { Empty, Gemv, Wmma, DequantCublas };

// gemv: chunked, M <= 8 (any input dtype); wmma: chunked, tensor cores, 8 < M <= 256; everything
// else dequantizes the weight and runs cuBLAS.
inline WeightOnlyPath choose_weight_only_path(int64_t m, int64_t n, bool chunked, bool tensor_cores) {
  if (m == 0 || n == 0) return WeightOnlyPath::Empty;
  if (chunked && m <= kGemvMaxM) return WeightOnlyPath::Gemv;
  if (chunked && tensor_cores && m <= kFusedGemmMaxM) return WeightOnlyPath::Wmma;
  return WeightOnlyPath::DequantCublas;
}

// The fallback warns once when a small batch misses the fused kernels because of the weight's
// layout (a performance cliff the user can avoid); large batches take cuBLAS by design.
inline bool warns_unchunked(int64_t m, int64_t n, bool chunked) {
  return !chunked && m > 0 && n > 0 && m <= kFusedGemmMaxM;
}

enum class Int8DynamicPath { Empty, Dp4a, IntMm };

// at::_int_mm where cuBLAS takes the shape (M > 16, K > 0, K and N multiples of 8); lowbit's dp4a
// kernel otherwise (decode-time M <= 16, odd K or N).
inline Int8DynamicPath choose_int8_dynamic_path(int64_t m, int64_t k, int64_t n) {
  if (m == 0 || n == 0) return Int8DynamicPath::Empty;
  if (m >= kIntMmMinM && k > 0 && k % 8 == 0 && n % 8 == 0) return Int8DynamicPath::IntMm;
  return Int8DynamicPath::Dp4a;
}

}  // namespace lowbit::cuda
