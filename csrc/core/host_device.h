// LOWBIT_HD marks the scalar math that the CPU reference kernels and the CUDA kernels share:
// one definition of every rounding rule, so the two paths agree bit for bit by construction.
#pragma once

#if defined(__CUDACC__)
#define LOWBIT_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HD inline
#endif

namespace lowbit::core {

// a * b rounded on its own. Write `c + mul_rn(a, b)` where a product feeds an add: nvcc would
// otherwise fuse `c + a * b` into one fma (a single rounding), which the CPU reference does not do.
LOWBIT_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

}  // namespace lowbit::core
