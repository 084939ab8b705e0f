// Schemas and shape (Meta) kernels of lowbit::compress_2_4 / decompress_2_4.
#include <lowbit/core/sparse_2_4.h>

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <lowbit/ops/sparse_2_4_checks.h>

namespace lowbit::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> compress_2_4_meta(const at::Tensor& x) {
  check_compress_2_4_args(x);
  return {at::empty_symint({x.sym_size(0), x.sym_size(1) / 2}, x.options()),
          at::empty_symint({x.sym_size(0), x.sym_size(1) / 8}, x.options().dtype(at::kByte))};
}

at::Tensor decompress_2_4_meta(const at::Tensor& values, const at::Tensor& meta) {
  check_decompress_2_4_args(values, meta);
  return at::empty_symint({values.sym_size(0), values.sym_size(1) * 2}, values.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("compress_2_4(Tensor x) -> (Tensor values, Tensor meta)");
  m.def("decompress_2_4(Tensor values, Tensor meta) -> Tensor");
}

TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("compress_2_4", &compress_2_4_meta);
  m.impl("decompress_2_4", &decompress_2_4_meta);
}

}  // namespace lowbit::ops
