// sparse24: 2:4 semi-structured sparse weights (torchao's SemiSparseWeightConfig), pruned once.
//   parts  values (N, K / 2) in the weight's dtype, meta uint8 (N, K / 8)
//          the portable compressed format of lowbit::compress_2_4 (core/sparse_2_4_format.h): per
//          group of 4 along a row the 2 kept values and a 4-bit code of their positions
//   rule   per-row 2:4 (prune_2_4 "largest_abs_rows": the 2 largest magnitudes of every group of 4;
//          inference needs no transposable tiles); K a multiple of 8
//   op     lowbit::semi_sparse_weight_linear(input, values, meta, bias?): decompress_2_4, then the
//          2:4 GEMM lowbit::semi_sparse_mm (CPU: the checked reference; CUDA: cuSPARSELt, bfloat16 /
//          float16, the weight compressed into cuSPARSELt's layout on every call)
// Reached as quantize_(model, "sparse24") or lowbit::sparse::sparsify_ (sparse/sparsify.h).
#include <torch/library.h>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/sparse_2_4.h>
#include <lowbit/ops/dispatch.h>
#include <lowbit/ops/quantized_linear_autograd.h>
#include <lowbit/ops/quantized_linear_checks.h>
#include <lowbit/ops/semi_sparse_weight_checks.h>
#include <lowbit/quant/format.h>

namespace lowbit::quant {
namespace {

using OptTensor = std::optional<at::Tensor>;
constexpr const char* kOp = "semi_sparse_weight_linear";

at::Tensor call_op(const at::Tensor& input, const at::Tensor& values, const at::Tensor& meta, const OptTensor& bias) {
  static auto op = ops::find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&)>(
      "lowbit::semi_sparse_weight_linear");
  return op.call(input, values, meta, bias);
}

class SemiSparseWeight final : public QuantFormat {
 public:
  SemiSparseWeight() { name_ = "sparse24"; }
  std::string kind() const override { return "SemiSparseWeightConfig"; }
  std::vector<std::pair<std::string, QuantParam>> params() const override { return {}; }
  std::vector<std::string> part_names() const override { return {"values", "meta"}; }
  // The kept values stay in the weight's own dtype: 2:4 sparsity, not a narrower number format.
  std::string qdtype() const override { return "dense_2_4"; }
  std::vector<int64_t> block_size(int64_t, int64_t) const override { return {1, 4}; }
  std::string layout() const override { return "sparse_2_4"; }
  std::string zero_point_domain() const override { return "none"; }
  std::optional<std::string> shape_reason(int64_t, int64_t k) const override {
    if (k % 8 == 0) return std::nullopt;
    return "in_features " + std::to_string(k) +
           " is not a multiple of 8 (2:4 groups of 4 along each row, two position codes per metadata byte)";
  }
  std::vector<at::Tensor> quantize(const at::Tensor& weight, const at::Tensor&) const override {
    // Pruned in the weight's own dtype, so the kept values are the weight's values exactly.
    const auto [pruned, mask] = core::prune_2_4(weight.contiguous(), "largest_abs_rows");
    (void)mask;
    const auto [values, meta] = core::compress_2_4(pruned);
    return {values, meta};
  }
  at::Tensor linear(const at::Tensor& input, at::TensorList p, const OptTensor& bias) const override {
    return call_op(input, p[0], p[1], bias);
  }
  at::Tensor dequantize(at::TensorList p, int64_t, int64_t, at::ScalarType dtype) const override {
    return core::decompress_2_4(p[0], p[1]).to(dtype);
  }
  // The values follow the layer's dtype (a cast of the kept values; the pattern is unchanged).
  std::vector<at::Tensor> convert_parts(at::TensorList p, at::ScalarType dtype, c10::Device device) const override {
    return {p[0].to(device, dtype), p[1].to(device)};
  }
  std::string linear_op() const override { return kOp; }
  std::vector<QuantParam> linear_op_args() const override { return {}; }
};

QuantizeConfig make() {
  static const auto format = std::make_shared<const SemiSparseWeight>();
  return QuantizeConfig(format);
}

at::Tensor meta(const at::Tensor& input, const at::Tensor& values, const at::Tensor& meta_codes,
                const OptTensor& bias) {
  return ops::qlinear_meta_output(input, ops::check_semi_sparse_weight(values, meta_codes, kOp), bias, kOp);
}

at::Tensor autograd(const at::Tensor& input, const at::Tensor& values, const at::Tensor& meta_codes,
                    const OptTensor& bias) {
  return ops::quantized_linear_autograd(
      kOp, input, bias, {values, meta_codes}, values.size(0), [&] { return call_op(input, values, meta_codes, bias); },
      [] { return std::string("sparse24"); });
}

const bool registered = register_format_family({
    /*order=*/90, "SemiSparseWeightConfig",
    "2:4 semi-structured sparse weights (per-row 2:4, pruned once, stored compressed; lowbit.sparsify_).", {},
    [](const QuantParams&) { return make(); },
    [] {
      return std::vector<std::pair<std::string, QuantizeConfig>>{{"sparse24", make()}, {"semi_sparse_weight", make()}};
    },
    nullptr});

}  // namespace

QuantizeConfig SemiSparseWeightConfig() { return make(); }

TORCH_LIBRARY_FRAGMENT(lowbit, m) {
  m.def("semi_sparse_weight_linear(Tensor input, Tensor values, Tensor meta, Tensor? bias=None) -> Tensor");
}
TORCH_LIBRARY_IMPL(lowbit, Meta, m) { m.impl(kOp, &meta); }
TORCH_LIBRARY_IMPL(lowbit, Autograd, m) { m.impl(kOp, &autograd); }

}  // namespace lowbit::quant
