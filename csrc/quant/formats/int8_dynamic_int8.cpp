// int8dq: int8 per-channel symmetric weights times int8 per-token symmetric activations quantized
// on the fly, int32 accumulation, then the two scales.
//   parts  qdata int8 (N, K), scale float32 (N,)      (the int8wo encoding)
//   op     lowbit::int8_dynamic_activation_int8_linear(input, qdata, scale, bias?)
#include <torch/library.h>

#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>
#include <lowbit/quant/formats/int8_per_channel_op.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr char kOp[] = "int8_dynamic_activation_int8_linear";
constexpr char kName[] = "int8dq";
using Op = Int8PerChannelOp<kOp, kName>;

class Int8DynamicInt8 final : public Int8PerChannelFormat {
 public:
  Int8DynamicInt8() { name_ = kName; }
  std::string kind() const override { return "Int8DynamicActivationInt8WeightConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {}; }
  bool quantizes_activations() const override { return true; }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return Op::call(input, p[0], p[1], bias);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {}; }
};

QuantizeConfig make() {
  static const auto format = std::make_shared<const Int8DynamicInt8>();
  return QuantizeConfig(format);
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
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &Op::meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &Op::autograd); }

}  // namespace lowbit::quant
