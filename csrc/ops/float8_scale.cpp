// Schemas and shape (Meta) kernels of the float8 scaling-step ops (csrc/core/float8_scale.h).
#include <lowbit/core/float8_scale.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/float8_scale_checks.h>

namespace lowbit::ops {
namespace {

at::Tensor float8_amax_meta(at::TensorList xs) {
  check_float8_amax_args(xs);
  return at::empty({static_cast<int64_t>(xs.size())}, xs[0].options().dtype(at::kFloat));
}

at::Tensor float8_amax_to_scale_meta(const at::Tensor& amax, at::ScalarType dtype, bool power_of_2_scale) {
  check_float8_amax_to_scale_args(amax, dtype);
  return at::empty_symint(amax.sym_sizes(), amax.options());
}

at::Tensor cast_to_float8_with_scale_meta(const at::Tensor& x, const at::Tensor& scale, at::ScalarType dtype) {
  check_cast_to_float8_with_scale_args(x, scale, dtype);
  return at::empty_symint(x.sym_sizes(), x.options().dtype(dtype));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("float8_amax(Tensor[] xs) -> Tensor");
  m.def("float8_amax_to_scale(Tensor amax, ScalarType dtype, bool power_of_2_scale=False) -> Tensor");
  m.def("cast_to_float8_with_scale(Tensor x, Tensor scale, ScalarType dtype) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("float8_amax", &float8_amax_meta);
  m.impl("float8_amax_to_scale", &float8_amax_to_scale_meta);
  m.impl("cast_to_float8_with_scale", &cast_to_float8_with_scale_meta);
}

}  // namespace lowbit::ops
