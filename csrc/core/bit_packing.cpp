// C++ entry points of the bit_packing ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/bit_packing.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

at::Tensor pack_uintx(const at::Tensor& codes, int64_t bits) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, int64_t)>("lowbit::pack_uintx");
  return op.call(codes, bits);
}

at::Tensor unpack_uintx(const at::Tensor& packed, int64_t bits, int64_t numel) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, int64_t, c10::SymInt)>("lowbit::unpack_uintx");
  return op.call(packed, bits, c10::SymInt(numel));
}

}  // namespace lowbit::core
