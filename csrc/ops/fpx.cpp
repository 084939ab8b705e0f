// Schemas and shape (Meta) kernels of lowbit::fpx_encode / fpx_decode.
#include <lowbit/core/fpx.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/fpx_checks.h>

namespace lowbit::ops {
namespace {

at::Tensor fpx_encode_meta(const at::Tensor& x, int64_t ebits, int64_t mbits) {
  check_fpx_encode_args(x, ebits, mbits);
  return at::empty_symint(x.sym_sizes(), x.options().dtype(at::kByte));
}

at::Tensor fpx_decode_meta(const at::Tensor& codes, int64_t ebits, int64_t mbits, at::ScalarType dtype) {
  check_fpx_decode_args(codes, ebits, mbits, dtype);
  return at::empty_symint(codes.sym_sizes(), codes.options().dtype(dtype));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("fpx_encode(Tensor x, int ebits, int mbits) -> Tensor");
  m.def("fpx_decode(Tensor codes, int ebits, int mbits, ScalarType dtype=float) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("fpx_encode", &fpx_encode_meta);
  m.impl("fpx_decode", &fpx_decode_meta);
}

}  // namespace lowbit::ops
