// C++ entry points of the 2:4 compressed-format ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/sparse_2_4.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

std::tuple<at::Tensor, at::Tensor> compress_2_4(const at::Tensor& x) {
  static auto op = ops::find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&)>("lowbit::compress_2_4");
  return op.call(x);
}

at::Tensor decompress_2_4(const at::Tensor& values, const at::Tensor& meta) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&)>("lowbit::decompress_2_4");
  return op.call(values, meta);
}

}  // namespace lowbit::core
