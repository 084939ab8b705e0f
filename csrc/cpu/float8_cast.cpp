// CPU kernel of lowbit::cast_to_float8. The scalar loops below are the reference: the definition
// of the numerics that the vectorized kernel (csrc/cpu/vec/float8_cast.cpp, the default path) and
// the CUDA kernel reproduce bit for bit (all call core/float8_format.h per element).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <math.h>

#include <lowbit/core/float8_format.h>
#include <lowbit/cpu/vec/kernels.h>
#include <lowbit/ops/float8_cast_checks.h>

namespace lowbit::cpu {
namespace {

using ops::Float8Granularity;

// View of the input as (batch, rows, cols) over its last two dims; a 1-D or per-tensor input
// is one batch of one row.
struct Matrix3d {
  int64_t batch, rows, cols;
};

Matrix3d as_matrix3d(const at::Tensor& x, Float8Granularity g) {
  if (g == Float8Granularity::Tensor) return {1, 1, x.numel()};
  int64_t batch = 1;  // the product of the leading dims (not numel / (rows*cols): rows or cols may be 0)
  for (int64_t d = 0; d < x.dim() - 2; ++d) batch *= x.size(d);
  return {batch, x.size(-2), x.size(-1)};
}

template <typename Fp8>
void cast_kernel(const float* x, Fp8* out, float* scale, Matrix3d m, Float8Granularity g, float max_finite,
                 bool pow2) {
  // The scale of element (b, r, c) lives at scale[b*rows + r] (row), scale[b*cols + c] (column)
  // or scale[0] (tensor).
  const int64_t num_scales = g == Float8Granularity::Tensor ? 1
                             : g == Float8Granularity::Row  ? m.batch * m.rows
                                                            : m.batch * m.cols;
  std::vector<float> amax(num_scales, 0.0f);
  for (int64_t b = 0; b < m.batch; ++b) {
    for (int64_t r = 0; r < m.rows; ++r) {
      const float* row = x + (b * m.rows + r) * m.cols;
      for (int64_t c = 0; c < m.cols; ++c) {
        const int64_t s = g == Float8Granularity::Tensor ? 0 : g == Float8Granularity::Row ? b * m.rows + r : b * m.cols + c;
        amax[s] = fmaxf(amax[s], core::float8_amax_term(row[c]));  // finite values only
      }
    }
  }
  for (int64_t s = 0; s < num_scales; ++s) scale[s] = core::float8_scale_from_amax(amax[s], max_finite, pow2);
  at::parallel_for(0, m.batch * m.rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t br = begin; br < end; ++br) {
      const int64_t b = br / m.rows;
      for (int64_t c = 0; c < m.cols; ++c) {
        const float s = g == Float8Granularity::Tensor ? scale[0] : g == Float8Granularity::Row ? scale[br] : scale[b * m.cols + c];
        out[br * m.cols + c] = core::cast_scaled_to_float8<Fp8>(x[br * m.cols + c], s, max_finite);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> cast_to_float8_cpu(const at::Tensor& x, at::ScalarType dtype,
                                                      c10::string_view granularity, bool power_of_2_scale) {
  const Float8Granularity g = ops::check_cast_to_float8_args(x, dtype, granularity);
  at::Tensor data = at::empty(x.sizes(), x.options().dtype(dtype));
  at::Tensor scale = at::empty_symint(ops::float8_scale_shape(x.sym_sizes(), g), x.options().dtype(at::kFloat));
  if (const vec::Kernels* k = vec::kernels()) {
    const at::Tensor xc = x.contiguous();
    const Matrix3d m = as_matrix3d(xc, g);
    k->cast_to_float8({xc.const_data_ptr(), xc.scalar_type(), static_cast<uint8_t*>(data.data_ptr()),
                       scale.data_ptr<float>(), m.batch, m.rows, m.cols, static_cast<vec::Float8Granularity>(g),
                       dtype == at::kFloat8_e5m2, power_of_2_scale});
    return {data, scale};
  }
  const at::Tensor xf = x.contiguous().to(at::kFloat);
  const Matrix3d m = as_matrix3d(xf, g);
  const float max_finite = core::float8_max_finite(dtype);
  if (dtype == at::kFloat8_e4m3fn) {
    cast_kernel(xf.data_ptr<float>(), data.data_ptr<c10::Float8_e4m3fn>(), scale.data_ptr<float>(), m, g, max_finite,
                power_of_2_scale);
  } else {
    cast_kernel(xf.data_ptr<float>(), data.data_ptr<c10::Float8_e5m2>(), scale.data_ptr<float>(), m, g, max_finite,
                power_of_2_scale);
  }
  return {data, scale};
}

}  // namespace

TORCH_LIBRARY_IMPL(lowbit, CPU, m) { m.impl("cast_to_float8", &cast_to_float8_cpu); }

}  // namespace lowbit::cpu
