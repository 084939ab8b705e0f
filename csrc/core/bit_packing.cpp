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

at::Tensor pack_uintx_rows(const at::Tensor& codes, int64_t bits) {
  TORCH_CHECK(codes.dim() == 2 && (codes.size(1) * bits) % 8 == 0, "pack_uintx_rows: codes must be 2-D (N, K) with "
              "K * bits a multiple of 8, got shape ", codes.sizes(), " and bits ", bits);
  return pack_uintx(codes.contiguous(), bits).reshape({codes.size(0), codes.size(1) * bits / 8});
}

at::Tensor unpack_uintx_rows(const at::Tensor& packed, int64_t bits) {
  TORCH_CHECK(packed.dim() == 2 && bits >= 1 && bits <= 8, "unpack_uintx_rows: packed must be 2-D (N, K * bits / 8) "
              "and bits in 1..8, got shape ", packed.sizes(), " and bits ", bits);
  const int64_t n = packed.size(0), k = packed.size(1) * 8 / bits;
  return unpack_uintx(packed.reshape({-1}), bits, n * k).reshape({n, k});
}

}  // namespace lowbit::core
