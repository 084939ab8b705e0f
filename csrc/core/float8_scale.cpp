// C++ entry points of the float8 scaling-step ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/float8_scale.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

at::Tensor float8_amax(const std::vector<at::Tensor>& xs) {
  static auto op = ops::find_op<at::Tensor(at::TensorList)>("lowbit::float8_amax");
  return op.call(xs);
}

at::Tensor float8_amax_to_scale(const at::Tensor& amax, at::ScalarType dtype, bool power_of_2_scale) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, at::ScalarType, bool)>("lowbit::float8_amax_to_scale");
  return op.call(amax, dtype, power_of_2_scale);
}

at::Tensor cast_to_float8_with_scale(const at::Tensor& x, const at::Tensor& scale, at::ScalarType dtype) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, at::ScalarType)>(
      "lowbit::cast_to_float8_with_scale");
  return op.call(x, scale, dtype);
}

}  // namespace lowbit::core
