// What the quantized linears' CPU ops (csrc/cpu/quantized_linear_cpu.cpp: checks, paths,
// epilogues) hand to their inner loops (csrc/cpu/vec/qlinear_weight_only.cpp, qlinear_int8.cpp,
// built once per instruction set and reached through csrc/cpu/vec/kernels.h's table). Plain C++:
// no intrinsics, no ATen vector types.
#pragma once

#include <cstdint>

namespace lowbit::cpu::vec {

// How a code of the packed weight becomes the reference's weight.
enum class QDecode : int {
  kInt8,        // the int8 code itself (int8wo: its scale multiplies the output columns)
  kFloat8E4M3,  // float(e4m3 code) * row_scale[n]
  kFloat8E5M2,
  kUintx,       // (float(code) - float(zero_point[g])) * scale[g], g = (n, k / group_size)
  kFpx,         // code_values[code] * row_scale[n]
};

// Each weight is rounded to the input dtype, as the reference dequantizes into it before its GEMM.
enum class QRound : int { kFloat, kBFloat16, kHalf };

// Codes per chunk: 32 codes of a packed row fill `bits` whole 32-bit words (core/bitstream.h).
constexpr int64_t kCodeChunk = 32;

// Rows of x per block of the GEMM's transposed x (Kernels::qlinear_gemm): two AVX-512 vectors.
constexpr int64_t kGemmBlock = 32;
// The GEMM blocks weight rows by 12 (AVX-512) or 6 (AVX2): callers split the rows at multiples of
// this, so no split leaves a partial block.
constexpr int64_t kGemmRowAlign = 12;

// A packed weight as the kernels read it: `n` rows of `row_bytes` bytes, row-major, with codes of
// `bits` bits in core/bitstream.h's order (one byte per code for the 8-bit formats).
struct PackedWeight {
  QDecode decode = QDecode::kInt8;
  QRound round = QRound::kFloat;
  const uint8_t* data = nullptr;
  int64_t n = 0, k = 0, row_bytes = 0;
  int bits = 8;
  const float* row_scale = nullptr;     // kFloat8*, kFpx: (n,)
  const float* group_scale = nullptr;   // kUintx: (n, k / group_size)
  const int32_t* group_zero = nullptr;  // kUintx
  int64_t group_size = 0;               // kUintx: a multiple of kCodeChunk
  const float* code_values = nullptr;   // kFpx: core::fpx_decode_value of each of the 2^bits codes
};

}  // namespace lowbit::cpu::vec
