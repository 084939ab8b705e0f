// This instruction set's table of vectorized kernels (csrc/cpu/vec/kernels.h), handed to
// csrc/cpu/vec_dispatch.cpp. A function, not a static table: nothing here runs at load time, so
// a CPU without this instruction set never executes an instruction of it.
#include <lowbit/cpu/vec/vec_util.h>

namespace lowbit::cpu::vec::CPU_CAPABILITY {

void cast_to_float8(const Float8CastArgs& a);
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

#define LOWBIT_STR2(x) #x
#define LOWBIT_STR(x) LOWBIT_STR2(x)

void fill_kernels(Kernels* k) {
  k->name = LOWBIT_STR(CPU_CAPABILITY);
  k->cast_to_float8 = &cast_to_float8;
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
}

}  // namespace lowbit::cpu::vec::CPU_CAPABILITY
