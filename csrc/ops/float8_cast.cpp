// Schema and shape (Meta) kernel of lowbit::cast_to_float8.
#include <lowbit/core/float8_cast.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/core/float8_format.h>
#include <lowbit/ops/float8_cast_checks.h>

namespace lowbit::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> cast_to_float8_meta(const at::Tensor& x, at::ScalarType dtype,
                                                       c10::string_view granularity, bool power_of_2_scale) {
  const Float8Granularity g = check_cast_to_float8_args(x, dtype, granularity);
  at::Tensor data = at::empty_symint(x.sym_sizes(), x.options().dtype(dtype));
  at::Tensor scale = at::empty_symint(float8_scale_shape(x.sym_sizes(), g), x.options().dtype(at::kFloat));
  return {data, scale};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("cast_to_float8(Tensor x, ScalarType dtype, str granularity=\"tensor\", bool power_of_2_scale=False)"
        " -> (Tensor data, Tensor scale)");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl("cast_to_float8", &cast_to_float8_meta); }

}  // namespace lowbit::ops
