// float8wo: float8 (e4m3fn or e5m2) weights with row-wise scales, high-precision activations.
//   parts  qdata float8 (N, K), scale float32 (N, 1)      w = qdata * scale[n]
//   op     lowbit::float8_weight_only_linear(input, qdata, scale, bias?)
#include <torch/library.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "float8_weight_only_linear";
constexpr const char* kKind = "Float8WeightOnlyConfig";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::float8_weight_only_linear");
  return op.call(input, qdata, scale, bias);
}

class Float8WeightOnly final : public QuantFormat {
 public:
  explicit Float8WeightOnly(at::ScalarType dtype) : dtype_(dtype) {
    TORCH_CHECK(dtype == at::kFloat8_e4m3fn || dtype == at::kFloat8_e5m2, kKind,
                ": dtype must be torch.float8_e4m3fn or torch.float8_e5m2, got ", dtype);
    name_ = dtype == at::kFloat8_e5m2 ? "float8wo_e5m2" : "float8wo_e4m3";
  }
  std::string kind() const override { return kKind; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {{"dtype", dtype_}}; }
  std::vector<std::string> part_names() const override { return {"qdata", "scale"}; }
  std::string qdtype() const override { return dtype_ == at::kFloat8_e5m2 ? "float8_e5m2" : "float8_e4m3fn"; }
  std::vector<int64_t> block_size(int64_t n, int64_t k) const override { return {1, k}; }
  std::string layout() const override { return "plain"; }
  std::string zero_point_domain() const override { return "none"; }
  std::vector<at::Tensor> quantize(const at::Tensor&, const at::Tensor& w) const override {
    return quantize_float8(w, dtype_, "row");
  }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], bias);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    return dequantize_float8(p[0], p[1], dtype);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {}; }

 private:
  at::ScalarType dtype_;
};

QuantizeConfig make(at::ScalarType dtype) {
  static const auto e4m3 = std::make_shared<const Float8WeightOnly>(at::kFloat8_e4m3fn);
  static const auto e5m2 = std::make_shared<const Float8WeightOnly>(at::kFloat8_e5m2);
  if (dtype == at::kFloat8_e4m3fn) return QuantizeConfig(e4m3);
  if (dtype == at::kFloat8_e5m2) return QuantizeConfig(e5m2);
  return QuantizeConfig(std::make_shared<const Float8WeightOnly>(dtype));  // throws naming the allowed dtypes
}

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_float8_weight(qdata, scale, false, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale}, qdata.size(0), [&] { return call_op(input, qdata, scale, bias); },
      [&] { return make(qdata.scalar_type()).name(); });
}

const bool registered = register_format_family({
    /*order=*/50, kKind, "float8 weights (row-wise scales), high-precision activations.",
    {{"dtype", QuantParam(at::kFloat8_e4m3fn)}},
    [](const QuantParams& p) { return make(param_dtype(p, kKind, "dtype")); },
    [] {
      std::vector<std::pair<std::string, QuantizeConfig>> t;
      for (const char* n : {"float8wo", "float8wo_e4m3", "float8_weight_only", "float8_e4m3_a16w8", "float_a16w8"})
        t.emplace_back(n, make(at::kFloat8_e4m3fn));
      for (const char* n : {"float8wo_e5m2", "float8_e5m2_a16w8"}) t.emplace_back(n, make(at::kFloat8_e5m2));
      return t;
    },
    nullptr});

}  // namespace

QuantizeConfig Float8WeightOnlyConfig(at::ScalarType dtype) { return make(dtype); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("float8_weight_only_linear(Tensor input, Tensor weight, Tensor scale, Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
