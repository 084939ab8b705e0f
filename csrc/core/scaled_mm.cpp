// C++ entry points of the scaled_mm ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/scaled_mm.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

at::Tensor scaled_mm(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale_a, const at::Tensor& scale_b,
                     const std::optional<at::Tensor>& bias, std::optional<at::ScalarType> out_dtype,
                     bool use_fast_accum, bool emulate) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const std::optional<at::Tensor>&, std::optional<at::ScalarType>, bool,
                                           bool)>("lowbit::scaled_mm");
  return op.call(a, b, scale_a, scale_b, bias, out_dtype, use_fast_accum, emulate);
}

}  // namespace lowbit::core
