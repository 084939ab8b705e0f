// C++ entry points of the fake_quantize ops: each calls its lowbit:: op through the dispatcher.
#include <lowbit/core/fake_quantize.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

at::Tensor fake_quantize_affine(const at::Tensor& input, at::IntArrayRef block_size, const std::string& qdtype,
                                const std::string& mapping, const std::string& zero_point_domain) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, at::IntArrayRef, c10::string_view, c10::string_view,
                                           c10::string_view)>("lowbit::fake_quantize_affine");
  return op.call(input, block_size, qdtype, mapping, zero_point_domain);
}

}  // namespace lowbit::core
