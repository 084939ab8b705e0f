// The AdamW update of one element, shared by the CPU reference and the CUDA kernel of
// lowbit::adamw_lowbit_step_. Same formula as torch.optim.AdamW (decoupled weight decay):
//     p <- p * (1 - lr * wd)
//     m <- m + (1 - b1) * (g - m)                 (torch: exp_avg.lerp_(grad, 1 - b1))
//     v <- b2 * v + (1 - b2) * g * g
//     p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc_k = 1 - b_k^step
// All element arithmetic is float32 with every product rounded on its own (mul_rn), so nvcc
// cannot fuse a multiply-add that the CPU rounds twice: the two backends agree bit for bit.
// The bias corrections come from the step count (a device tensor) inside the kernel, in
// float64 by repeated squaring (exactly rounded multiplies, no pow(), whose last bits differ
// between libm and CUDA); step-independent coefficients are rounded once on the host.
#pragma once

#include <math.h>
#include <cstdint>

#include <lowbit/core/host_device.h>

namespace lowbit::core {

// Hyperparameters as the kernels take them: the step-independent coefficients rounded to float
// once on the host (make_adamw_hyper), lr and betas in double for the bias corrections.
struct AdamWHyper {
  double lr, beta1, beta2;
  float one_minus_beta1, beta2_f, one_minus_beta2, eps;
  float decay;  // 1 - lr * weight_decay
};

// Per-step coefficients of one parameter (they depend on its step count).
struct AdamWCoefs {
  float one_minus_beta1, beta2, one_minus_beta2, eps, decay;
  float step_size;  // lr / bc1
  float bc2_sqrt;   // sqrt(bc2)
};

inline AdamWHyper make_adamw_hyper(double lr, double beta1, double beta2, double eps, double weight_decay) {
  return {lr,
          beta1,
          beta2,
          static_cast<float>(1.0 - beta1),
          static_cast<float>(beta2),
          static_cast<float>(1.0 - beta2),
          static_cast<float>(eps),
          static_cast<float>(1.0 - lr * weight_decay)};
}

// a * b in double, never fused into an fma by ptxas (mul.rn), like mul_rn for float.
LOWBIT_HD double mul_rn_f64(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// base^n for n >= 0, by squaring in float64.
LOWBIT_HD double pow_by_squaring(double base, int64_t n) {
  double result = 1.0;
  while (n > 0) {
    if (n & 1) result = mul_rn_f64(result, base);
    base = mul_rn_f64(base, base);
    n >>= 1;
  }
  return result;
}

// Coefficients for a parameter whose step count (already incremented) is `step` (>= 1).
LOWBIT_HD AdamWCoefs adamw_coefs(const AdamWHyper& h, int64_t step) {
  AdamWCoefs c;
  c.one_minus_beta1 = h.one_minus_beta1;
  c.beta2 = h.beta2_f;
  c.one_minus_beta2 = h.one_minus_beta2;
  c.eps = h.eps;
  c.decay = h.decay;
  const double bc1 = 1.0 - pow_by_squaring(h.beta1, step);
  const double bc2 = 1.0 - pow_by_squaring(h.beta2, step);
  c.step_size = static_cast<float>(h.lr / bc1);
  c.bc2_sqrt = static_cast<float>(sqrt(bc2));
  return c;
}

// New first moment.
LOWBIT_HD float adamw_first_moment(float m, float g, const AdamWCoefs& c) {
  return m + mul_rn(c.one_minus_beta1, g - m);
}

// New second moment. The rank-1 statistics pass calls this too, so both passes see the same v.
LOWBIT_HD float adamw_second_moment(float v, float g, const AdamWCoefs& c) {
  return mul_rn(c.beta2, v) + mul_rn(mul_rn(c.one_minus_beta2, g), g);
}

// New parameter from the new moments.
LOWBIT_HD float adamw_param(float p, float m, float v, const AdamWCoefs& c) {
  const float denom = sqrtf(v) / c.bc2_sqrt + c.eps;
  return mul_rn(p, c.decay) - mul_rn(c.step_size, m / denom);
}

}  // namespace lowbit::core
