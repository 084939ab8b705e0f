// lowbit::qat prepare / convert on lowbit::nn::Linear: the straight-through gradient reaches the
// weights, and the converted int4dq model computes what the prepared model computed (the same
// float32 fake-quant arithmetic, summed in another order by the CPU's int4dq kernels; see
// tests/python/test_qat.py for the bound argument).
#include <gtest/gtest.h>

#include <ATen/ops/allclose.h>
#include <ATen/ops/randn.h>
#include <torch/utils.h>

#include <lowbit/nn/linear.h>
#include <lowbit/qat/qat.h>

namespace {

using namespace lowbit;

TEST(Qat, ConvertedMatchesPreparedAndGradientsFlow) {
  torch::manual_seed(0);
  torch::nn::Module root;
  auto fc = root.register_module("fc", nn::Linear(128, 64));
  const auto summary = qat::prepare(root, qat::Int8DynActInt4WeightQATConfig(32));
  ASSERT_EQ(summary.converted.size(), 1u);
  EXPECT_EQ(fc->method().name(), "fake_quant_int4dq-32");
  const at::Tensor x = at::randn({6, 128});
  at::Tensor y = fc->forward(x);
  y.sum().backward();
  ASSERT_TRUE(fc->weight.grad().defined());
  EXPECT_GT(fc->weight.grad().abs().sum().item<double>(), 0.0);

  qat::convert(root);
  EXPECT_EQ(fc->method().name(), "int4dq-32");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(at::allclose(fc->forward(x), y.detach(), /*rtol=*/1e-5, /*atol=*/1e-5));
}

TEST(Qat, BadConfigIsAnError) {
  torch::nn::Module root;
  auto fc = root.register_module("fc", nn::Linear(64, 64));
  qat::QATConfig c = qat::Int8DynActInt4WeightQATConfig(32);
  c.weight.granularity = "per_block";
  EXPECT_THROW(qat::prepare(root, c), c10::Error);
  EXPECT_EQ(fc->method().name(), "plain");
}

}  // namespace
