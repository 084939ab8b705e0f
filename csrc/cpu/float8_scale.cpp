// CPU kernels of the float8 scaling-step ops: the vectorized kernels of the current set
// (csrc/cpu/vec/float8_cast.cpp) for float32 / bfloat16 / float16 input, else the scalar
// reference below. The reference uses the same per-element functions
// (core/float8_format.h) and the same amax over the finite values (core::float8_amax_term) as
// cast_to_float8's kernels, so the three steps reproduce cast_to_float8(x, dtype, "tensor") bit for bit.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <math.h>

#include <lowbit/core/float8_format.h>
#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/float8_scale_checks.h>

namespace lowbit::cpu {
namespace {

// The dtypes the vectorized kernels read (others go through float32 on the reference path).
bool vectorizable(at::ScalarType t) { return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf; }

at::Tensor float8_amax_cpu(at::TensorList xs) {
  ops::check_float8_amax_args(xs);
  at::Tensor out = at::empty({static_cast<int64_t>(xs.size())}, xs[0].options().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const vec::Kernels* kernels = vec::kernels();
  for (size_t i = 0; i < xs.size(); ++i) {
    if (kernels != nullptr && vectorizable(xs[i].scalar_type())) {
      const at::Tensor xc = xs[i].contiguous();
      o[i] = kernels->float8_amax(xc.const_data_ptr(), xc.scalar_type(), xc.numel());
      continue;
    }
    const at::Tensor xf = xs[i].contiguous().to(at::kFloat);
    const float* x = xf.const_data_ptr<float>();
    float m = 0.0f;
    for (int64_t k = 0; k < xf.numel(); ++k) m = fmaxf(m, core::float8_amax_term(x[k]));  // finite values only
    o[i] = m;
  }
  return out;
}

at::Tensor float8_amax_to_scale_cpu(const at::Tensor& amax, at::ScalarType dtype, bool power_of_2_scale) {
  ops::check_float8_amax_to_scale_args(amax, dtype);
  const at::Tensor a = amax.contiguous();
  at::Tensor out = at::empty(amax.sizes(), amax.options());
  const float max_finite = core::float8_max_finite(dtype);
  const float* in = a.const_data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t i = 0; i < a.numel(); ++i) o[i] = core::float8_scale_from_amax(in[i], max_finite, power_of_2_scale);
  return out;
}

template <typename Fp8>
void cast_with_scale(const float* x, Fp8* out, int64_t n, float scale, float max_finite) {
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = core::cast_scaled_to_float8<Fp8>(x[i], scale, max_finite);
  });
}

at::Tensor cast_to_float8_with_scale_cpu(const at::Tensor& x, const at::Tensor& scale, at::ScalarType dtype) {
  ops::check_cast_to_float8_with_scale_args(x, scale, dtype);
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(dtype));
  const float s = scale.reshape({}).item<float>();  // a CPU scalar: no device sync on this path
  const float max_finite = core::float8_max_finite(dtype);
  if (const vec::Kernels* k = vec::kernels(); k != nullptr && vectorizable(x.scalar_type())) {
    const at::Tensor xc = x.contiguous();
    k->cast_to_float8_with_scale(xc.const_data_ptr(), xc.scalar_type(), xc.numel(), s, dtype == at::kFloat8_e5m2,
                                 static_cast<uint8_t*>(out.data_ptr()));
    return out;
  }
  const at::Tensor xf = x.contiguous().to(at::kFloat);
  if (dtype == at::kFloat8_e4m3fn) {
    cast_with_scale(xf.const_data_ptr<float>(), out.data_ptr<c10::Float8_e4m3fn>(), xf.numel(), s, max_finite);
  } else {
    cast_with_scale(xf.const_data_ptr<float>(), out.data_ptr<c10::Float8_e5m2>(), xf.numel(), s, max_finite);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("float8_amax", &float8_amax_cpu);
  m.impl("float8_amax_to_scale", &float8_amax_to_scale_cpu);
  m.impl("cast_to_float8_with_scale", &cast_to_float8_with_scale_cpu);
}

}  // namespace lowbit::cpu
