// uintXwo: uint{bits} group-wise asymmetric weights (bits 1..7; 8 is int8wo), bit-packed row by
// row, high-precision activations.
//   parts  qdata (N, K * bits / 8) uint8, scale float32 and zero_point int32 (N, K / group)
//   op     lowbit::uintx_weight_only_linear(input, qdata, scale, zero_point, bits, group_size, bias?)
#include <torch/library.h>

#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "uintx_weight_only_linear";
constexpr const char* kKind = "UIntXWeightOnlyConfig";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const at::Tensor& zp,
                   int64_t bits, int64_t group_size, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           int64_t, int64_t, const OptTensor&)>("lowbit::uintx_weight_only_linear");
  return op.call(input, qdata, scale, zp, bits, group_size, bias);
}

class UIntxWeightOnly final : public GroupwisePackedFormat {
 public:
  UIntxWeightOnly(int64_t bits, int64_t group_size) : GroupwisePackedFormat(bits, group_size, "asymmetric") {
    TORCH_CHECK(bits >= 1 && bits <= 7, kKind, ": bits must be in 1..7 (8 is Int8WeightOnlyConfig), got ", bits);
    TORCH_CHECK(group_size >= 1, kKind, "(bits=", bits, ", group_size=", group_size, "): group_size must be >= 1");
    name_ = "uint" + std::to_string(bits) + "wo-" + std::to_string(group_size);
  }
  std::string kind() const override { return kKind; }
  std::vector<std::pair<std::string, QuantParam>> params() const override {
    return {{"bits", bits_}, {"group_size", group_size_}};
  }
  std::string qdtype() const override { return "uint" + std::to_string(bits_); }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], p[2], bits_, group_size_, bias);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {bits_, group_size_}; }
};

QuantizeConfig make(int64_t bits, int64_t group_size) {
  return QuantizeConfig(std::make_shared<const UIntxWeightOnly>(bits, group_size));
}

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const at::Tensor& zp,
                int64_t bits, int64_t group_size, const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_packed_groupwise(qdata, scale, zp, bits, group_size, kOp), bias,
                                  kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, const at::Tensor& zp,
                    int64_t bits, int64_t group_size, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale, zp}, qdata.size(0),
      [&] { return call_op(input, qdata, scale, zp, bits, group_size, bias); },
      [&] { return make(bits, group_size).name(); });
}

const bool registered = register_format_family({
    /*order=*/80, kKind, "uint{bits} weights (1..7), group-wise asymmetric, bit-packed.",
    {{"bits", std::nullopt}, {"group_size", QuantParam(int64_t{64})}},
    [](const QuantParams& p) { return make(param_int(p, kKind, "bits"), param_int(p, kKind, "group_size")); },
    [] {
      std::vector<std::pair<std::string, QuantizeConfig>> t;
      for (int64_t b = 1; b <= 7; ++b) t.emplace_back("uint" + std::to_string(b) + "wo", make(b, 64));
      for (int64_t b = 1; b <= 7; ++b) {
        for (int64_t g : {32, 64, 128, 256})
          t.emplace_back("uint" + std::to_string(b) + "wo-" + std::to_string(g), make(b, g));
      }
      for (int64_t b = 1; b <= 7; ++b) t.emplace_back("uint_a16w" + std::to_string(b), make(b, 64));
      return t;
    },
    [](const std::string& name) -> std::optional<QuantizeConfig> {
      for (int64_t b = 1; b <= 7; ++b) {
        if (auto g = parse_suffix_int(name, "uint" + std::to_string(b) + "wo-")) return make(b, *g);
      }
      return std::nullopt;
    }});

}  // namespace

QuantizeConfig UIntXWeightOnlyConfig(int64_t bits, int64_t group_size) { return make(bits, group_size); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("uintx_weight_only_linear(Tensor input, Tensor packed_weight, Tensor scale, Tensor zero_point, int bits, "
        "int group_size, Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
