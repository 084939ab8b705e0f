// int4wo: uint4 group-wise asymmetric weights with float zero points in tinygemm's tile-packed
// layout (aten's int4 kernels), high-precision activations.
//   parts  qdata          tinygemm-packed codes (uint8 on CPUs, int32 on CUDA: the packing is
//                         per device type, so the weight cannot change device type)
//          scale_and_zero (K / group, N, 2): scale and zero per group in bfloat16, tinygemm's
//                         compute dtype on both device types (activations are cast to it)
//          w = (q - 8) * scale + zero
//   ops    lowbit::int4_pack_tinygemm(codes, inner_k_tiles), lowbit::int4_weight_only_linear(input,
//          qdata, scale_and_zero, group_size, bias?)
#include <ATen/ops/stack.h>
#include <torch/library.h>

#include <lowbit/core/affine.h>
#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/quant/format.h>
#include <lowbit/quant/formats/encodings.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "int4_weight_only_linear";

bool is_tinygemm_group(int64_t g) { return g == 32 || g == 64 || g == 128 || g == 256; }

// Largest tinygemm inner_k_tiles whose tile (inner_k_tiles * 16) divides K; 0 if none does.
int64_t tinygemm_inner_k_tiles(int64_t k) {
  for (int64_t t : {8, 4, 2}) {
    if (k % (t * 16) == 0) return t;
  }
  return 0;
}

at::Tensor call_op(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& sz, int64_t group_size,
                   const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                           const OptTensor&)>("lowbit::int4_weight_only_linear");
  return op.call(input, qdata, sz, group_size, bias);
}

at::Tensor pack_tinygemm(const at::Tensor& codes, int64_t inner_k_tiles) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, int64_t)>("lowbit::int4_pack_tinygemm");
  return op.call(codes, inner_k_tiles);
}

// tinygemm computes in bfloat16. aten's CPU kernel also takes float32 / float16 scales, but only its
// bfloat16 path is vectorized: float32 ran 30x (M = 1) to 90x (M = 32) slower on 4096x4096, slower
// than the float32 linear. bfloat16 on both device types also gives CPU and CUDA the same numerics.
constexpr at::ScalarType kComputeDtype = at::kBFloat16;

class Int4WeightOnly final : public QuantFormat {
 public:
  explicit Int4WeightOnly(int64_t group_size) : group_size_(group_size) {
    TORCH_CHECK(is_tinygemm_group(group_size), "Int4WeightOnlyConfig: group_size must be 32, 64, 128 or 256 "
                "(tinygemm's tiles), got ", group_size);
    name_ = "int4wo-" + std::to_string(group_size);
  }
  std::string kind() const override { return "Int4WeightOnlyConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {{"group_size", group_size_}}; }
  std::vector<std::string> part_names() const override { return {"qdata", "scale_and_zero"}; }
  std::string qdtype() const override { return "uint4"; }
  std::vector<int64_t> block_size(int64_t n, int64_t k) const override { return {1, group_size_}; }
  std::string layout() const override { return "tinygemm_int4"; }
  std::string zero_point_domain() const override { return "float"; }
  at::Tensor scale(at::TensorList p) const override { return p[1].select(2, 0); }
  std::optional<at::Tensor> zero_point(at::TensorList p) const override { return p[1].select(2, 1); }
  std::optional<std::string> shape_reason(int64_t n, int64_t k) const override {
    if (n % 16 == 0 && k % group_size_ == 0 && tinygemm_inner_k_tiles(k) != 0) return std::nullopt;
    return "(out_features, in_features) = (" + std::to_string(n) + ", " + std::to_string(k) +
           ") does not fit tinygemm (needs out_features % 16 == 0, in_features % 32 == 0 and in_features % "
           "group_size == 0)";
  }
  std::vector<at::Tensor> quantize(const at::Tensor& weight, const at::Tensor& w) const override {
    const int64_t g = group_size_;
    auto [scale, zero] = core::choose_qparams_affine(w, {1, g}, "uint4", "asymmetric", "float");
    const at::Tensor codes = core::quantize_affine(w, {1, g}, scale, zero, "uint4", "float");
    const at::Tensor sz = at::stack({scale, zero}, -1).transpose(0, 1).contiguous().to(kComputeDtype);
    return {pack_tinygemm(codes, tinygemm_inner_k_tiles(w.size(1))), sz};
  }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], group_size_, bias);
  }
  std::vector<at::Tensor> convert_parts(at::TensorList p, at::ScalarType dtype, c10::Device device) const override {
    TORCH_CHECK(device.type() == p[0].device().type(), "int4wo: tinygemm's packing differs between ",
                p[0].device().type(), " and ", device.type(), "; quantize on the target device instead "
                "(quantize_(..., device=...))");
    return {p[0].to(device), p[1].to(device, kComputeDtype)};
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {group_size_}; }

 private:
  int64_t group_size_;
};

QuantizeConfig make(int64_t group_size) { return QuantizeConfig(std::make_shared<const Int4WeightOnly>(group_size)); }

at::Tensor meta(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& sz, int64_t group_size,
                const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_int4_tinygemm(qdata, sz, group_size, kOp), bias, kOp);
}

at::Tensor pack_meta(const at::Tensor& codes, int64_t inner_k_tiles) {
  TORCH_CHECK(false, "int4_pack_tinygemm: packing happens once, on a real device (CPU or CUDA), not under Meta");
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& qdata, const at::Tensor& sz, int64_t group_size,
                    const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {qdata, sz}, sz.size(1), [&] { return call_op(input, qdata, sz, group_size, bias); },
      [&] { return make(group_size).name(); });
}

const bool registered = register_format_family({
    /*order=*/10, "Int4WeightOnlyConfig", "int4 weight-only (tinygemm), group-wise asymmetric with float zero points.",
    {{"group_size", QuantParam(int64_t{128})}},
    [](const QuantParams& p) { return make(param_int(p, "Int4WeightOnlyConfig", "group_size")); },
    [] {
      std::vector<std::pair<std::string, QuantizeConfig>> t;
      for (const char* n : {"int4wo", "int4_weight_only", "int_a16w4"}) t.emplace_back(n, make(128));
      for (int64_t g : {32, 64, 128, 256}) t.emplace_back("int4wo-" + std::to_string(g), make(g));
      return t;
    },
    nullptr});

}  // namespace

QuantizeConfig Int4WeightOnlyConfig(int64_t group_size) { return make(group_size); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("int4_pack_tinygemm(Tensor codes, int inner_k_tiles=8) -> Tensor");
  m.def("int4_weight_only_linear(Tensor input, Tensor packed_weight, Tensor scale_and_zeros, int group_size, "
        "Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) {
  m.impl("int4_pack_tinygemm", &pack_meta);
  m.impl(kOp, &meta);
}
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
