// C++ entry points of the float8_cast ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/float8_cast.h>

#include <lowbit/core/float8_format.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/dtype_name.h>

namespace lowbit::core {

float float8_max_finite(at::ScalarType dtype) {
  ops::check_dtype(dtype, {at::kFloat8_e4m3fn, at::kFloat8_e5m2}, "cast_to_float8", "dtype");
  return dtype == at::kFloat8_e4m3fn ? kE4M3Max : kE5M2Max;
}

std::tuple<at::Tensor, at::Tensor> cast_to_float8(const at::Tensor& x, at::ScalarType dtype,
                                                  const std::string& granularity, bool power_of_2_scale) {
  static auto op = ops::find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, at::ScalarType,
                                                                   c10::string_view, bool)>(
      "lowbit::cast_to_float8");
  return op.call(x, dtype, granularity, power_of_2_scale);
}

}  // namespace lowbit::core
