// C++ entry points of the float8_cast ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/float8_cast.h>

#include <lowbit/core/float8_format.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

float float8_max_finite(at::ScalarType dtype) {
  TORCH_CHECK(dtype == at::kFloat8_e4m3fn || dtype == at::kFloat8_e5m2, "cast_to_float8: dtype ", dtype,
              " is not supported; allowed: torch.float8_e4m3fn, torch.float8_e5m2");
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
