// This instruction set's table of vectorized kernels (csrc/cpu/vec/kernels.h), handed to
// csrc/cpu/vec_dispatch.cpp. A function, not a static table: nothing here runs at load time, so
// a CPU without this instruction set never executes an instruction of it.
#include <lowbit/cpu/vec/vec_util.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {

void cast_to_float8(const Float8CastArgs& a);
float float8_amax(const void* x, at::ScalarType dtype, int64_t n);
void cast_to_float8_with_scale(const void* x, at::ScalarType dtype, int64_t n, float scale, bool e5m2, uint8_t* out);
void fpx_encode(const void* x, at::ScalarType dtype, int64_t n, int ebits, int mbits, uint8_t* codes);
int64_t fpx_decode(const uint8_t* codes, int64_t n, int ebits, int mbits, void* out, at::ScalarType out_dtype);
void affine_choose_qparams(const void* x, at::ScalarType dtype, const AffineRuns& r, bool symmetric, float eps,
                           float* scale, float* zero_point);
void affine_quantize(const void* x, at::ScalarType dtype, const AffineRuns& r, const float* scale,
                     const float* zero_point, uint8_t* codes);
int64_t affine_dequantize(const uint8_t* codes, const AffineRuns& r, const float* scale, const float* zero_point,
                          void* out, at::ScalarType out_dtype);
void fake_quantize_affine(const void* x, at::ScalarType dtype, const AffineRuns& r, bool symmetric, float eps,
                          void* out);
int64_t pack_uintx(const uint8_t* codes, int64_t n, int bits, uint8_t* packed);
void unpack_uintx(const uint8_t* packed, int bits, int64_t n, uint8_t* codes);
void float8_to_float(const uint8_t* bits, int64_t n, bool e5m2, float* out);
void scaled_mm_epilogue(const float* acc, int64_t m, int64_t n, const float* scale_a, int64_t scale_a_stride,
                        const float* scale_b, int64_t scale_b_stride, const float* bias, void* out,
                        at::ScalarType out_dtype);
void adamw_lowbit_step(const adamw::ParamSlot& slot, int64_t block_size, bool stochastic_round);

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
void qlinear_gemv(const PackedWeight& w, const float* x, int64_t m_rows, int64_t x_stride, int64_t n0, int64_t n1,
                  float* acc, int64_t acc_stride);
void qlinear_gemm(const PackedWeight& w, const float* xt, int64_t m_rows, int64_t kp, int64_t n0, int64_t n1,
                  float* acc, int64_t acc_stride);
void qlinear_dequantize(const PackedWeight& w, int64_t n0, int64_t n1, float* out);
void qlinear_int8_gemm(const int8_t* xq, const int32_t* xsum, int64_t m_rows, int64_t xq_stride, const int8_t* w,
                       int64_t k, int64_t n0, int64_t n1, int32_t* acc, int64_t acc_stride);
#endif

#define LOWBIT_STR2(x) #x
#define LOWBIT_STR(x) LOWBIT_STR2(x)

void fill_kernels(Kernels* k) {
  k->name = LOWBIT_STR(CPU_CAPABILITY);
  k->cast_to_float8 = &cast_to_float8;
  k->float8_amax = &float8_amax;
  k->cast_to_float8_with_scale = &cast_to_float8_with_scale;
  k->fpx_encode = &fpx_encode;
  k->fpx_decode = &fpx_decode;
  k->affine_choose_qparams = &affine_choose_qparams;
  k->affine_quantize = &affine_quantize;
  k->affine_dequantize = &affine_dequantize;
  k->fake_quantize_affine = &fake_quantize_affine;
  k->pack_uintx = &pack_uintx;
  k->unpack_uintx = &unpack_uintx;
  k->float8_to_float = &float8_to_float;
  k->scaled_mm_epilogue = &scaled_mm_epilogue;
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
  k->qlinear_gemv = &qlinear_gemv;
  k->qlinear_gemm = &qlinear_gemm;
  k->qlinear_dequantize = &qlinear_dequantize;
  k->qlinear_int8_gemm = &qlinear_int8_gemm;
#else
  k->qlinear_gemv = nullptr;  // DEFAULT: the quantized linears run their reference kernels
  k->qlinear_gemm = nullptr;
  k->qlinear_dequantize = nullptr;
  k->qlinear_int8_gemm = nullptr;
#endif
  k->adamw_lowbit_step = &adamw_lowbit_step;
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
