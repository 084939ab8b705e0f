// lowbit::nn::Linear is a drop-in for torch::nn::Linear: same parameters, init and output.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <lowbit/nn/linear.h>

TEST(Linear, MatchesTorchLinear) {
  for (bool with_bias : {true, false}) {
    const auto opts = torch::nn::LinearOptions(48, 24).bias(with_bias);
    torch::manual_seed(7);
    torch::nn::Linear reference(opts);
    torch::manual_seed(7);
    lowbit::nn::Linear ours(opts);
    EXPECT_TRUE(torch::equal(ours->weight, reference->weight));
    EXPECT_EQ(ours->bias.defined(), with_bias);
    if (with_bias) EXPECT_TRUE(torch::equal(ours->bias, reference->bias));
    const auto x = torch::randn({5, 3, 48});
    EXPECT_TRUE(torch::equal(ours->forward(x), reference->forward(x)));
    EXPECT_EQ(ours->named_parameters().keys(), reference->named_parameters().keys());
  }
}

namespace {
// A method that doubles the plain output: proves forward goes through the installed method.
struct DoubledMethod : lowbit::nn::LinearMethod {
  std::string name() const override { return "doubled"; }
  at::Tensor forward(lowbit::nn::LinearImpl& layer, const at::Tensor& x) override {
    return 2 * lowbit::nn::PlainLinearMethod().forward(layer, x);
  }
};
}  // namespace

TEST(Linear, MethodIsSwappable) {
  lowbit::nn::Linear layer(8, 4);
  const auto x = torch::randn({2, 8});
  const auto plain = layer->forward(x);
  layer->set_method(std::make_shared<DoubledMethod>());
  EXPECT_EQ(layer->method().name(), "doubled");
  EXPECT_TRUE(torch::allclose(layer->forward(x), 2 * plain));
  layer->set_method(nullptr);
  EXPECT_EQ(layer->method().name(), "plain");
  EXPECT_TRUE(torch::equal(layer->forward(x), plain));
}

TEST(Linear, GradientsFlowToParameters) {
  lowbit::nn::Linear layer(6, 3);
  layer->forward(torch::randn({4, 6})).sum().backward();
  ASSERT_TRUE(layer->weight.grad().defined());
  ASSERT_TRUE(layer->bias.grad().defined());
  EXPECT_GT(layer->weight.grad().abs().sum().item<float>(), 0.0f);
}
