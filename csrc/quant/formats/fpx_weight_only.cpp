// fpX_eAmB weight-only: floating-point codes with A exponent and B mantissa bits (X = 1 + A + B in
// 2..7; 8-bit floats are float8wo), one float32 scale per row, codes bit-packed row by row.
//   parts  qdata (N, K * X / 8) uint8, scale float32 (N,)      w = decode(code) * scale[n]
//   op     lowbit::fpx_weight_only_linear(input, qdata, scale, ebits, mbits, bias?)
#include <ATen/ops/amax.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include <limits>

#include <lowbit/core/bit_packing.h>
#include <lowbit/core/fpx.h>
#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "fpx_weight_only_linear";
constexpr const char* kKind = "FPXWeightOnlyConfig";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, int64_t ebits,
                   int64_t mbits, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t,
                                           const OptTensor&)>("lowbit::fpx_weight_only_linear");
  return op.call(input, qdata, scale, ebits, mbits, bias);
}

std::string fpx_name(int64_t e, int64_t m) {
  return "fp" + std::to_string(1 + e + m) + "_e" + std::to_string(e) + "m" + std::to_string(m);
}

class FpxWeightOnly final : public QuantFormat {
 public:
  FpxWeightOnly(int64_t ebits, int64_t mbits) : ebits_(ebits), mbits_(mbits) {
    TORCH_CHECK(ebits >= 1 && mbits >= 0 && 1 + ebits + mbits <= 7, kKind, ": ebits=", ebits, ", mbits=", mbits,
                " is not a valid fpX; allowed: ebits >= 1, mbits >= 0, 1 + ebits + mbits <= 7 (8-bit floats are "
                "Float8WeightOnlyConfig)");
    name_ = fpx_name(ebits, mbits);
  }
  std::string kind() const override { return kKind; }
  std::vector<std::pair<std::string, QuantParam>> params() const override {
    return {{"ebits", ebits_}, {"mbits", mbits_}};
  }
  std::vector<std::string> part_names() const override { return {"qdata", "scale"}; }
  std::string qdtype() const override { return name_; }
  std::vector<int64_t> block_size(int64_t n, int64_t k) const override { return {1, k}; }
  std::string layout() const override { return "bitpacked"; }
  std::string zero_point_domain() const override { return "none"; }
  std::optional<std::string> shape_reason(int64_t n, int64_t k) const override {
    if (k % 8 == 0) return std::nullopt;
    return "(out_features, in_features) = (" + std::to_string(n) + ", " + std::to_string(k) +
           "): in_features must be a multiple of 8 (byte-aligned packed rows)";
  }
  std::vector<at::Tensor> quantize(const at::Tensor&, const at::Tensor& w) const override {
    // One scale per row maps the row's amax onto the format's largest finite value.
    const at::Tensor max_code = at::full({1}, (1 << (ebits_ + mbits_)) - 1, w.options().dtype(at::kByte));
    const double fpx_max = core::fpx_decode(max_code, ebits_, mbits_).item<double>();
    const at::Tensor scale = at::amax(w.abs(), {1}).div_(fpx_max).clamp_min_(std::numeric_limits<float>::min());
    const at::Tensor codes = core::fpx_encode(w.div(scale.unsqueeze(1)), ebits_, mbits_);
    return {core::pack_uintx_rows(codes, 1 + ebits_ + mbits_), scale};
  }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], ebits_, mbits_, bias);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    const at::Tensor codes = core::unpack_uintx_rows(p[0], 1 + ebits_ + mbits_);
    return core::fpx_decode(codes, ebits_, mbits_, at::kFloat).mul_(p[1].reshape({-1, 1})).to(dtype);
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {ebits_, mbits_}; }

 private:
  int64_t ebits_, mbits_;
};

QuantizeConfig make(int64_t e, int64_t m) { return QuantizeConfig(std::make_shared<const FpxWeightOnly>(e, m)); }

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, int64_t ebits,
                int64_t mbits, const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_fpx_weight(qdata, scale, ebits, mbits, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& scale, int64_t ebits,
                    int64_t mbits, const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, scale}, qdata.size(0),
      [&] { return call_op(input, qdata, scale, ebits, mbits, bias); }, [&] { return fpx_name(ebits, mbits); });
}

const bool registered = register_format_family({
    /*order=*/70, kKind, "fpX_e{ebits}m{mbits} weights (1 + ebits + mbits <= 7), row scales.",
    {{"ebits", std::nullopt}, {"mbits", std::nullopt}},
    [](const QuantParams& p) { return make(param_int(p, kKind, "ebits"), param_int(p, kKind, "mbits")); },
    [] {
      std::vector<std::pair<std::string, QuantizeConfig>> t;
      for (int64_t x = 2; x <= 7; ++x) {
        for (int64_t e = 1; e <= x - 1; ++e) t.emplace_back(fpx_name(e, x - 1 - e), make(e, x - 1 - e));
      }
      // float_a16wX: the usual fpX split (more exponent bits as X grows).
      const std::pair<int64_t, int64_t> split[] = {{1, 1}, {2, 1}, {2, 2}, {3, 2}, {3, 3}};
      for (const auto& [e, m] : split) t.emplace_back("float_a16w" + std::to_string(1 + e + m), make(e, m));
      return t;
    },
    nullptr});

}  // namespace

QuantizeConfig FPXWeightOnlyConfig(int64_t ebits, int64_t mbits) { return make(ebits, mbits); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("fpx_weight_only_linear(Tensor input, Tensor packed_weight, Tensor scale, int ebits, int mbits, "
        "Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
