// int8dq: int8 per-channel symmetric weights times int8 per-token symmetric activations quantized
// on the fly, int32 accumulation, then the two scales.
//   parts  qdata int8 (N, K), scale float32 (N,)      (the int8wo encoding)
//   op     lowbit::int8_dynamic_activation_int8_linear(input, qdata, scale, bias?)
#include <torch/library.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "int8_dynamic_activation_int8_linear";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::int8_dynamic_activation_int8_linear");
  return op.call(input, qdata, scale, bias);
}

class Int8DynamicInt8 final : public Int8PerChannelFormat {
 public:
  Int8DynamicInt8() { name_ = "int8dq"; }
  std::string kind() const override { return "Int8DynamicActivationInt8WeightConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {}; }
  bool quantizes_activations() const override { return true; }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], bias);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {}; }
};

QuantizeConfig make() {
  static const auto format = std::make_shared<const Int8DynamicInt8>();
  return QuantizeConfig(format);
}

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_int8_weight(qdata, scale, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale}, qdata.size(0), [&] { return call_op(input, qdata, scale, bias); },
      [] { return std::string("int8dq"); });
}

const bool registered = register_format_family({
    /*order=*/30, "Int8DynamicActivationInt8WeightConfig",
    "per-token int8 activations x per-channel int8 weights, int32 accumulation.", {},
    [](const QuantParams&) { return make(); },
    [] {
      return std::vector<std::pair<std::string, QuantizeConfig>>{
          {"int8dq", make()}, {"int8_dynamic_activation_int8_weight", make()}, {"int_a8w8", make()}};
    },
    nullptr});

}  // namespace

QuantizeConfig Int8DynamicActivationInt8WeightConfig() { return make(); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("int8_dynamic_activation_int8_linear(Tensor input, Tensor weight, Tensor weight_scale, Tensor? bias=None) "
        "-> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
