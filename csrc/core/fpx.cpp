// C++ entry points of the fpx ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/fpx.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

at::Tensor fpx_encode(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, int64_t, int64_t)>("lowbit::fpx_encode");
  return op.call(x, ebits, mbits);
}

at::Tensor fpx_decode(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  static auto op =
      ops::find_op<at::Tensor(const at::Tensor&, int64_t, int64_t, at::ScalarType)>("lowbit::fpx_decode");
  return op.call(codes, ebits, mbits, dtype);
}

}  // namespace lowbit::core
