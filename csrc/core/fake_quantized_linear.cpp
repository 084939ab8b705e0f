// C++ entry point of lowbit::fake_quantized_linear: calls the op through the dispatcher.
#include <lowbit/core/fake_quantized_linear.h>

#include <lowbit/ops/dispatch.h>

namespace lowbit::core {

at::Tensor fake_quantized_linear(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, const FakeQuantSpec& w,
                                 const std::optional<FakeQuantSpec>& a) {
  using Str = c10::string_view;
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, Str,
                                           int64_t, bool, Str, std::optional<Str>, int64_t, bool, Str)>(
      "lowbit::fake_quantized_linear");
  const std::optional<Str> a_qdtype = a ? std::optional<Str>(a->qdtype) : std::nullopt;
  return op.call(input, weight, bias, w.qdtype, w.group_size, w.symmetric, w.zero_point_domain, a_qdtype,
                 a ? a->group_size : 0, a ? a->symmetric : true, a ? Str(a->zero_point_domain) : Str("int"));
}

}  // namespace lowbit::core
