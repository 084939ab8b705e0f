// The vectorized CPU kernels: one table of functions per instruction set (csrc/cpu/vec/*.cpp are
// compiled once per ISA, see cmake/LowbitCpuKernels.cmake), and the switch that picks the table.
//
// Each kernel computes exactly what its op's reference kernel computes (csrc/cpu/<op>.cpp, the
// definition of the numerics, scalar loops over the per-element functions of csrc/core): the
// vectorized loops call the same functions, or equal them bit for bit (reductions of min / max
// are exact in any order), and tests/cpp/test_cpu_kernels.cpp runs every kernel set against the
// reference on the same inputs. The ops take the reference path for what the kernels do not
// cover (float64 inputs, block layouts that are not contiguous runs).
//
// Pointers are raw and contiguous; float inputs are float32, bfloat16 or float16 (`dtype`).
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

#include <lowbit/core/affine_quant.h>
#include <lowbit/cpu/vec/qlinear.h>

namespace lowbit::cpu::adamw {
struct ParamSlot;  // csrc/cpu/adamw_lowbit.h
}  // namespace lowbit::cpu::adamw

namespace lowbit::cpu::vec {

enum class Float8Granularity : int { Tensor = 0, Row = 1, Column = 2 };

struct Float8CastArgs {
  const void* x;
  at::ScalarType dtype;
  uint8_t* out;  // float8 bits
  float* scale;  // 1, batch * rows or batch * cols values
  int64_t batch, rows, cols;  // (batch, rows, cols) view; tensor granularity: (1, 1, numel)
  Float8Granularity granularity;
  bool e5m2;
  bool power_of_2;
};

// Affine blocks that are contiguous runs of `run` elements (per-tensor, per-row, per-group of
// the last dim): block b is elements [b * run, (b + 1) * run).
struct AffineRuns {
  int64_t num_runs, run;
  core::QuantRange range;
  core::ZeroPointDomain domain;
};

struct Kernels {
  const char* name;
  // lowbit::cast_to_float8: amax, scales and the saturating cast.
  void (*cast_to_float8)(const Float8CastArgs& a);
  // The steps of cast_to_float8's tensorwise path as ops of their own (FSDP's float8 all-gather
  // takes them apart): lowbit::float8_amax of one tensor (the absolute max of its finite values),
  // and lowbit::cast_to_float8_with_scale's saturating cast with a given scale into float8 bits.
  float (*float8_amax)(const void* x, at::ScalarType dtype, int64_t n);
  void (*cast_to_float8_with_scale)(const void* x, at::ScalarType dtype, int64_t n, float scale, bool e5m2,
                                    uint8_t* out);
  // lowbit::fpx_encode / fpx_decode. decode returns the flat index of the first code wider than
  // the format (then `out` is unspecified), or -1.
  void (*fpx_encode)(const void* x, at::ScalarType dtype, int64_t n, int ebits, int mbits, uint8_t* codes);
  int64_t (*fpx_decode)(const uint8_t* codes, int64_t n, int ebits, int mbits, void* out, at::ScalarType out_dtype);
  // lowbit::choose_qparams_affine over runs: scale and zero point (float32) per run.
  void (*affine_choose_qparams)(const void* x, at::ScalarType dtype, const AffineRuns& r, bool symmetric, float eps,
                                float* scale, float* zero_point);
  // lowbit::quantize_affine over runs: codes as bytes (two's complement for signed qdtypes).
  void (*affine_quantize)(const void* x, at::ScalarType dtype, const AffineRuns& r, const float* scale,
                          const float* zero_point, uint8_t* codes);
  // lowbit::dequantize_affine over runs; returns the flat index of the first code outside
  // [qmin, qmax] (then `out` is unspecified), or -1.
  int64_t (*affine_dequantize)(const uint8_t* codes, const AffineRuns& r, const float* scale,
                               const float* zero_point, void* out, at::ScalarType out_dtype);
  // lowbit::fake_quantize_affine: choose, quantize and dequantize of each run in one pass, the
  // result in the input's dtype.
  void (*fake_quantize_affine)(const void* x, at::ScalarType dtype, const AffineRuns& r, bool symmetric, float eps,
                               void* out);
  // lowbit::pack_uintx (returns the flat index of the first code wider than `bits`, or -1) and
  // unpack_uintx.
  int64_t (*pack_uintx)(const uint8_t* codes, int64_t n, int bits, uint8_t* packed);
  void (*unpack_uintx)(const uint8_t* packed, int bits, int64_t n, uint8_t* codes);
  // lowbit::scaled_mm's float32 emulation around the GEMM: float8 bits -> float32 (exact), and
  // the epilogue out = T((acc * scale_a[m]) * scale_b[n] + bias[n]) over the (M, N) float32
  // accumulator, each step rounded to float32 on its own (a scale or bias stride of 0 broadcasts
  // one value; bias may be null).
  void (*float8_to_float)(const uint8_t* bits, int64_t n, bool e5m2, float* out);
  void (*scaled_mm_epilogue)(const float* acc, int64_t m, int64_t n, const float* scale_a, int64_t scale_a_stride,
                             const float* scale_b, int64_t scale_b_stride, const float* bias, void* out,
                             at::ScalarType out_dtype);

  // The quantized linears (csrc/cpu/quantized_linear_cpu.cpp; csrc/cpu/vec/qlinear.h). Null in
  // the DEFAULT set, whose ops run the reference kernels.
  // acc[m * acc_stride + j] = sum_k x[m * x_stride + k] * w[j][k] in float32 for m < m_rows and
  // rows j in [n0, n1), w[j][k] the reference's weight; x is float32 and zero from k up to the
  // next multiple of kCodeChunk.
  void (*qlinear_gemv)(const PackedWeight& w, const float* x, int64_t m_rows, int64_t x_stride, int64_t n0,
                       int64_t n1, float* acc, int64_t acc_stride);
  // The same sums for more rows of x, x given transposed in blocks of kGemmBlock rows: xt
  // (ceil(m_rows / kGemmBlock), kp, kGemmBlock) float32, xt[(b * kp + k) * kGemmBlock + i] =
  // x[b * kGemmBlock + i][k], zero past m_rows and k; kp a multiple of kCodeChunk.
  void (*qlinear_gemm)(const PackedWeight& w, const float* xt, int64_t m_rows, int64_t kp, int64_t n0, int64_t n1,
                       float* acc, int64_t acc_stride);
  // out[(j - n0) * w.k + i] = w[j][i] (the reference's weight, as float32), rows j in [n0, n1).
  void (*qlinear_dequantize)(const PackedWeight& w, int64_t n0, int64_t n1, float* out);
  // acc[m * acc_stride + j] = sum_k xq[m][k] * w[j][k] exactly in int32, rows j in [n0, n1): xq
  // (m_rows, xq_stride) int8 with zeros from k to xq_stride (a multiple of 64), xsum[m] = sum_k
  // xq[m][k], w (n, k) int8 row-major.
  void (*qlinear_int8_gemm)(const int8_t* xq, const int32_t* xsum, int64_t m_rows, int64_t xq_stride,
                            const int8_t* w, int64_t k, int64_t n0, int64_t n1, int32_t* acc, int64_t acc_stride);
  // lowbit::adamw_lowbit_step_ on one parameter, in place (parallel over its blocks inside);
  // equal bit for bit to adamw::step_reference.
  void (*adamw_lowbit_step)(const adamw::ParamSlot& slot, int64_t block_size, bool stochastic_round);
};

// Which kernels the CPU ops run.
enum class KernelSet { Reference, Default, Avx2, Avx512 };

// The vectorized kernels for this machine, or nullptr for the scalar reference kernels. Chosen
// once: LOWBIT_CPU_KERNELS=reference|default|avx2|avx512 if set, else the instruction set ATen
// itself uses (at::get_cpu_capability(), which ATEN_CPU_CAPABILITY overrides).
const Kernels* kernels();
KernelSet kernel_set();
// For tests: switch kernel sets in-process. Errors if `set` was not built or is above the
// instruction set ATen uses on this machine.
void set_kernel_set(KernelSet set);
// The kernel sets this build and machine can run, Reference first.
std::vector<KernelSet> available_kernel_sets();
const char* kernel_set_name(KernelSet set);

}  // namespace lowbit::cpu::vec
