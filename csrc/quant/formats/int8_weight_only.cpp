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

class Int8WeightOnly final : public QuantFormat {
 public:
  Int8WeightOnly() { name_ = "int8wo"; }
  std::string kind() const override { return "Int8WeightOnlyConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {}; }
  std::vector<std::string> part_names() const override { return {"qdata", "scale"}; }
  std::string qdtype() const override { return "int8"; }
  std::vector<int64_t> block_size(int64_t n, int64_t k) const override { return {1, k}; }
  std::string layout() const override { return "plain"; }
  std::string zero_point_domain() const override { return "none"; }
  std::vector<at::Tensor> quantize(const at::Tensor&, const at::Tensor& w) const override {
    return quantize_int8_per_channel(w);
  }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], bias);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    return dequantize_int8_per_channel(p[0], p[1], dtype);
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
