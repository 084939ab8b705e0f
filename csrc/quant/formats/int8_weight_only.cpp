// int8wo: int8 per-channel symmetric weights, high-precision activations.
//   parts  qdata int8 (N, K), scale float32 (N,)      w = qdata * scale[n]
//   op     lowbit::int8_weight_only_linear(input, qdata, scale, bias?)
//          (the per-channel scale multiplies the GEMM's output columns)
#include <torch/library.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "int8_weight_only_linear";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::int8_weight_only_linear");
  return op.call(input, qdata, scale, bias);
}

class Int8WeightOnly final : public Int8PerChannelFormat {
 public:
  Int8WeightOnly() { name_ = "int8wo"; }
  std::string kind() const override { return "Int8WeightOnlyConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {}; }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], bias);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {}; }
};

QuantizeConfig make() {
  static const auto format = std::make_shared<const Int8WeightOnly>();
  return QuantizeConfig(format);
}

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_int8_weight(qdata, scale, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale}, qdata.size(0), [&] { return call_op(input, qdata, scale, bias); },
      [] { return std::string("int8wo"); });
}

const bool registered = register_format_family({
    /*order=*/20, "Int8WeightOnlyConfig", "int8 weight-only, per-channel symmetric.", {},
    [](const QuantParams&) { return make(); },
    [] {
      return std::vector<std::pair<std::string, QuantizeConfig>>{
          {"int8wo", make()}, {"int8_weight_only", make()}, {"int_a16w8", make()}};
    },
    nullptr});

}  // namespace

QuantizeConfig Int8WeightOnlyConfig() { return make(); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("int8_weight_only_linear(Tensor input, Tensor weight, Tensor scale, Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
