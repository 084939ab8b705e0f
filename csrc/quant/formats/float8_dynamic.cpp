// float8dq: e4m3fn weights times e4m3fn activations cast on the fly, through lowbit::scaled_mm
// (cuBLASLt on CUDA, float32 emulation elsewhere); "tensor" (one scale each) or "row" (per output
// channel and per token) scales.
//   parts  qdata float8_e4m3fn (N, K), scale float32 () or (N, 1)
//   op     lowbit::float8_dynamic_activation_linear(input, qdata, scale, granularity, bias?)
#include <torch/library.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "float8_dynamic_activation_linear";
constexpr const char* kKind = "Float8DynamicActivationFloat8WeightConfig";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale,
                   c10::string_view granularity, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::string_view,
                                           const OptTensor&)>("lowbit::float8_dynamic_activation_linear");
  return op.call(input, qdata, scale, granularity, bias);
}

void check_granularity(c10::string_view granularity, const char* where) {
  TORCH_CHECK(granularity == "tensor" || granularity == "row", where, ": granularity must be 'tensor' or 'row', got '",
              granularity, "'");
}

class Float8Dynamic final : public QuantFormat {
 public:
  explicit Float8Dynamic(std::string granularity) : granularity_(std::move(granularity)) {
    check_granularity(granularity_, kKind);
    name_ = "float8dq_e4m3_" + granularity_;
  }
  std::string kind() const override { return kKind; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {{"granularity", granularity_}}; }
  std::vector<std::string> part_names() const override { return {"qdata", "scale"}; }
  std::string qdtype() const override { return "float8_e4m3fn"; }
  std::vector<int64_t> block_size(int64_t n, int64_t k) const override {
    if (granularity_ == "tensor") return {n, k};
    return {1, k};
  }
  std::string layout() const override { return "plain"; }
  std::string zero_point_domain() const override { return "none"; }
  bool quantizes_activations() const override { return true; }
  std::vector<at::Tensor> quantize(const at::Tensor&, const at::Tensor& w) const override {
    return quantize_float8(w, at::kFloat8_e4m3fn, granularity_);
  }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], granularity_, bias);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    return dequantize_float8(p[0], p[1], dtype);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {granularity_}; }

 private:
  std::string granularity_;
};

QuantizeConfig make(const std::string& granularity) {
  static const auto tensor = std::make_shared<const Float8Dynamic>("tensor");
  static const auto row = std::make_shared<const Float8Dynamic>("row");
  if (granularity == "tensor") return QuantizeConfig(tensor);
  if (granularity == "row") return QuantizeConfig(row);
  return QuantizeConfig(std::make_shared<const Float8Dynamic>(granularity));  // throws naming the allowed values
}

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale,
                c10::string_view granularity, const OptTensor& bias) {
  check_granularity(granularity, kOp);
  return ops::qlinear_meta_output(input, ops::check_float8_weight(qdata, scale, true, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale,
                    c10::string_view granularity, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale}, qdata.size(0),
      [&] { return call_op(input, qdata, scale, granularity, bias); },
      [&] { return make(std::string(granularity)).name(); });
}

const bool registered = register_format_family({
    /*order=*/60, kKind, "e4m3 activations and weights, 'tensor' or 'row' scales, scaled_mm.",
    {{"granularity", QuantParam(std::string("tensor"))}},
    [](const QuantParams& p) { return make(param_string(p, kKind, "granularity")); },
    [] {
      std::vector<std::pair<std::string, QuantizeConfig>> t;
      for (const char* n : {"float8dq", "float8dq_e4m3", "float8dq_e4m3_tensor", "float8_e4m3_tensor",
                            "float8_dynamic_activation_float8_weight", "float_a8w8"})
        t.emplace_back(n, make("tensor"));
      for (const char* n : {"float8dq_e4m3_row", "float8_e4m3_row"}) t.emplace_back(n, make("row"));
      return t;
    },
    nullptr});

}  // namespace

QuantizeConfig Float8DynamicActivationFloat8WeightConfig(const std::string& granularity) { return make(granularity); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("float8_dynamic_activation_linear(Tensor input, Tensor weight, Tensor weight_scale, str granularity, "
        "Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
