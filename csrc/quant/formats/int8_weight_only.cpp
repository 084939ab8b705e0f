// int8wo: int8 per-channel symmetric weights, high-precision activations.
//   parts  qdata int8 (N, K), scale float32 (N,)      w = qdata * scale[n]
//   op     lowbit::int8_weight_only_linear(input, qdata, scale, bias?)
//          (the per-channel scale multiplies the GEMM's output columns)
#include <torch/library.h>

#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>
#include <lowbit/quant/formats/int8_per_channel_op.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr char kOp[] = "int8_weight_only_linear";
constexpr char kName[] = "int8wo";
using Op = Int8PerChannelOp<kOp, kName>;

class Int8WeightOnly final : public Int8PerChannelFormat {
 public:
  Int8WeightOnly() { name_ = kName; }
  std::string kind() const override { return "Int8WeightOnlyConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {}; }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return Op::call(input, p[0], p[1], bias);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {}; }
};

QuantizeConfig make() {
  static const auto format = std::make_shared<const Int8WeightOnly>();
  return QuantizeConfig(format);
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
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &Op::meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &Op::autograd); }

}  // namespace lowbit::quant
