// int4dq: int4 group-wise symmetric weights times int8 per-token asymmetric activations
// quantized on the fly (fake-quantized: float32 accumulation), as QAT's Int8DynActInt4Weight.
//   parts  qdata (N, K / 2) uint4 codes (zero point 8) two per byte, scale float32 and
//          zero_point int32 (N, K / group)
//   op     lowbit::int8_dynamic_activation_int4_linear(input, qdata, scale, zero_point, group_size, bias?)
#include <torch/library.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "int8_dynamic_activation_int4_linear";
constexpr const char* kKind = "Int8DynamicActivationInt4WeightConfig";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const at::Tensor& zp,
                   int64_t group_size, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           int64_t, const OptTensor&)>("lowbit::int8_dynamic_activation_int4_linear");
  return op.call(input, qdata, scale, zp, group_size, bias);
}

// Symmetric int4 stored as uint4 with zero point 8: the same codes shifted, so it packs as uint4.
class Int8DynamicInt4 final : public GroupwisePackedFormat {
 public:
  explicit Int8DynamicInt4(int64_t group_size) : GroupwisePackedFormat(4, group_size, "symmetric") {
    TORCH_CHECK(group_size >= 1, kKind, "(group_size=", group_size, "): group_size must be >= 1");
    name_ = "int4dq-" + std::to_string(group_size);
  }
  std::string kind() const override { return kKind; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {{"group_size", group_size_}}; }
  std::string qdtype() const override { return "int4"; }
  bool quantizes_activations() const override { return true; }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], p[2], group_size_, bias);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {group_size_}; }
};

QuantizeConfig make(int64_t group_size) { return QuantizeConfig(std::make_shared<const Int8DynamicInt4>(group_size)); }

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const at::Tensor& zp,
                int64_t group_size, const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_packed_groupwise(qdata, scale, zp, 4, group_size, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const at::Tensor& zp,
                    int64_t group_size, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale, zp}, qdata.size(0),
      [&] { return call_op(input, qdata, scale, zp, group_size, bias); }, [&] { return make(group_size).name(); });
}

const bool registered = register_format_family({
    /*order=*/40, kKind, "per-token int8 activations x group-wise symmetric int4 weights.",
    {{"group_size", QuantParam(int64_t{32})}},
    [](const QuantParams& p) { return make(param_int(p, kKind, "group_size")); },
    [] {
      std::vector<std::pair<std::string, QuantizeConfig>> t;
      for (const char* n : {"int4dq", "int8_dynamic_activation_int4_weight", "int_a8w4"}) t.emplace_back(n, make(32));
      for (int64_t g : {32, 64, 128, 256}) t.emplace_back("int4dq-" + std::to_string(g), make(g));
      return t;
    },
    [](const std::string& name) -> std::optional<QuantizeConfig> {
      if (auto g = parse_suffix_int(name, "int4dq-")) return make(*g);
      return std::nullopt;
    }});

}  // namespace

QuantizeConfig Int8DynamicActivationInt4WeightConfig(int64_t group_size) { return make(group_size); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("int8_dynamic_activation_int4_linear(Tensor input, Tensor packed_weight, Tensor scale, Tensor zero_point, "
        "int group_size, Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
