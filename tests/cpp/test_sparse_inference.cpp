// lowbit::sparse::sparsify_ / SemiSparseWeightConfig (the quantized format "sparse24") through the
// C++ API: parity with the dense model with the 2:4 mask applied by hand, the stored parts, skip
// reasons, all-or-nothing errors, save_quantized / load_quantized and torch::save round trips.
#include <gtest/gtest.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <ATen/TensorOperators.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/randn.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/sparse_2_4.h>
#include <lowbit/inference/quantized_linear_method.h>
#include <lowbit/inference/serialization.h>
#include <lowbit/sparse/sparsify.h>

namespace {

using namespace lowbit;

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(int64_t seed = 0, at::ScalarType dtype = at::kFloat) {
    torch::manual_seed(seed);
    fc1 = register_module("fc1", nn::Linear(64, 128));
    fc2 = register_module("fc2", nn::Linear(128, 64));
    to(dtype);
  }
  at::Tensor forward(const at::Tensor& x) { return fc2->forward(at::gelu(fc1->forward(x))); }
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// The dense forward with each weight pruned per row by hand.
at::Tensor masked_forward(Mlp& m, const at::Tensor& x) {
  auto pruned = [](const at::Tensor& w) { return std::get<0>(core::prune_2_4(w, "largest_abs_rows")); };
  const at::Tensor h = at::gelu(at::linear(x, pruned(m->fc1->weight), m->fc1->bias));
  return at::linear(h, pruned(m->fc2->weight), m->fc2->bias);
}

const inference::QuantizedWeight& packed(const nn::Linear& lin) {
  auto* m = dynamic_cast<const inference::QuantizedLinearMethod*>(&lin->method());
  EXPECT_NE(m, nullptr);
  return m->weight();
}

TEST(SparseInference, ConfigIsTheSparse24Format) {
  const auto c = sparse::SemiSparseWeightConfig();
  EXPECT_EQ(c.kind(), "SemiSparseWeightConfig");
  EXPECT_EQ(c.name(), "sparse24");
  EXPECT_EQ(quant::parse_quantize_config("sparse24"), c);
  EXPECT_EQ(c.to_string(), "SemiSparseWeightConfig()");
}

TEST(SparseInference, MatchesTheDenseModelWithTheMaskAppliedByHand) {
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    Mlp ref(0, dtype), model(0, dtype);
    torch::NoGradGuard no_grad;
    const at::Tensor x = at::randn({2, 5, 64}).to(dtype);
    const at::Tensor expected = masked_forward(ref, x);
    const nn::ConvertSummary summary = sparse::sparsify_(*model);
    ASSERT_EQ(summary.converted.size(), 2u) << summary.to_string();
    EXPECT_TRUE(summary.skipped.empty()) << summary.to_string();
    EXPECT_EQ(model->fc1->method().name(), "sparse24");
    const at::Tensor y = model->forward(x);
    EXPECT_EQ(y.scalar_type(), dtype);
    const double tol = dtype == at::kFloat ? 1e-5 : 2e-2;
    EXPECT_TRUE(at::allclose(y, expected, tol, tol)) << c10::toString(dtype);
    EXPECT_EQ(model->fc1->weight.numel(), 0);  // the compressed weight is the only copy
  }
}

TEST(SparseInference, PartsAreTheCompressedPrunedWeight) {
  Mlp ref(0, at::kBFloat16), model(0, at::kBFloat16);
  sparse::sparsify_(*model);
  const auto& w = packed(model->fc1);
  ASSERT_EQ(w.part_names(), (std::vector<std::string>{"values", "meta"}));
  const auto [pruned, mask] = core::prune_2_4(ref->fc1->weight.detach(), "largest_abs_rows");
  const auto [values, meta] = core::compress_2_4(pruned);
  EXPECT_TRUE(at::equal(w.part("values"), values));
  EXPECT_TRUE(at::equal(w.part("meta"), meta));
  EXPECT_EQ(w.nbytes() * 16, 128 * 64 * 2 * 9);  // 9/16 of bf16's bytes
  EXPECT_TRUE(at::equal(inference::dequantize_weight(w), pruned));
  EXPECT_EQ(w.layout(), "sparse_2_4");
}

TEST(SparseInference, SkipsWhatItCannotTakeAndSaysWhy) {
  torch::nn::Module root;
  auto odd = root.register_module("odd", nn::Linear(60, 32));
  auto ok = root.register_module("ok", nn::Linear(32, 16));
  root.register_module("plain_torch", torch::nn::Linear(64, 64));
  const nn::ConvertSummary summary = sparse::sparsify_(root);
  ASSERT_EQ(summary.converted.size(), 1u) << summary.to_string();
  ASSERT_EQ(summary.skipped.size(), 2u) << summary.to_string();
  EXPECT_NE(summary.to_string().find("in_features 60 is not a multiple of 8"), std::string::npos)
      << summary.to_string();
  EXPECT_NE(summary.to_string().find("torch::nn::Linear"), std::string::npos) << summary.to_string();
  EXPECT_EQ(odd->method().name(), "plain");
  EXPECT_EQ(ok->method().name(), "sparse24");

  Mlp m;
  sparse::sparsify_(*m, sparse::SemiSparseWeightConfig(),
                    [](const std::string& name, const nn::LinearImpl&) { return name == "fc2"; });
  EXPECT_EQ(m->fc1->method().name(), "plain");
  EXPECT_EQ(m->fc2->method().name(), "sparse24");
}

TEST(SparseInference, AQuantizedFormatIsAnErrorAndChangesNothing) {
  Mlp m;
  const at::Tensor before = m->fc1->weight.clone();
  EXPECT_THROW(sparse::sparsify_(*m, quant::Int8WeightOnlyConfig()), c10::Error);
  EXPECT_EQ(m->fc1->method().name(), "plain");
  EXPECT_TRUE(at::equal(m->fc1->weight, before));
}

TEST(SparseInference, SaveLoadRoundTrip) {
  // Plain files removed with std::remove: std::filesystem::remove_all resolves to libtorch's copy,
  // which crashes in this build (the recipes use their own remove_tree for that reason).
  const std::string path = (std::filesystem::temp_directory_path() / "lowbit_sparse_inference.safetensors").string();
  Mlp model(0, at::kBFloat16);
  sparse::sparsify_(*model);
  inference::save_quantized(*model, path);
  Mlp fresh(1, at::kBFloat16);
  inference::load_quantized(*fresh, path);
  EXPECT_EQ(fresh->fc2->method().name(), "sparse24");
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({4, 64}).to(at::kBFloat16);
  EXPECT_TRUE(at::equal(fresh->forward(x), model->forward(x)));

  // torch::save / torch::load carry the compressed weight too.
  const std::string pt = (std::filesystem::temp_directory_path() / "lowbit_sparse_inference.pt").string();
  torch::save(model, pt);
  Mlp loaded(2, at::kBFloat16);
  torch::load(loaded, pt);
  EXPECT_TRUE(at::equal(loaded->forward(x), model->forward(x)));
  std::remove(path.c_str());
  std::remove(pt.c_str());
}

}  // namespace
