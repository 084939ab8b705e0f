// Schemas and shape (Meta) kernels of lowbit::pack_uintx / unpack_uintx.
#include <lowbit/core/bit_packing.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/bit_packing_checks.h>

namespace lowbit::ops {
namespace {

at::Tensor pack_uintx_meta(const at::Tensor& codes, int64_t bits) {
  check_pack_uintx_args(codes, bits);
  return at::empty_symint({(codes.sym_numel() * bits + 7) / 8}, codes.options());
}

at::Tensor unpack_uintx_meta(const at::Tensor& packed, int64_t bits, c10::SymInt numel) {
  check_unpack_uintx_args(packed, bits, numel);
  return at::empty_symint({numel}, packed.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("pack_uintx(Tensor codes, int bits) -> Tensor");
  m.def("unpack_uintx(Tensor packed, int bits, SymInt numel) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("pack_uintx", &pack_uintx_meta);
  m.impl("unpack_uintx", &unpack_uintx_meta);
}

}  // namespace lowbit::ops
