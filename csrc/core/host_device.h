// LOWBIT_HD marks the scalar math that the CPU reference kernels and the CUDA kernels share:
// one definition of every rounding rule, so the two paths agree bit for bit by construction.
#pragma once

#if defined(__CUDACC__)
#define LOWBIT_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HD inline
#endif
