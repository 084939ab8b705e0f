// 2:4 sparse training through the C++ face: the ops' math against the mask applied by hand
// (forward, grad_input, grad_weight for ste and masked, both targets), convert summaries with the
// shared skip rule, the reverse swap, config errors, and a small model that trains.
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/semi_sparse_linear.h>
#include <lowbit/nn/linear.h>
#include <lowbit/sparse/config.h>
#include <lowbit/sparse/convert.h>
#include <lowbit/sparse/speed_table.h>

#include "expect_error.h"

namespace {

using lowbit::sparse::SemiSparseTrainingConfig;

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", lowbit::nn::Linear(32, 64));
    fc2 = register_module("fc2", lowbit::nn::Linear(64, 16));
    head = register_module("head", lowbit::nn::Linear(16, 6));
  }
  at::Tensor forward(const at::Tensor& x) { return head->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x))))); }
  lowbit::nn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
};

bool all_filter(const std::string&, const lowbit::nn::LinearImpl&) { return true; }

}  // namespace

TEST(SemiSparseTraining, WeightSparseMathMatchesTheMaskByHand) {
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  const auto x = torch::randn({2, 5, 32}, opts), w = torch::randn({24, 32}, opts), b = torch::randn({24}, opts);
  const auto gy = torch::randn({2, 5, 24}, opts);
  auto [wp, mask] = lowbit::core::prune_2_4(w);
  for (const char* gradient : {"ste", "masked"}) {
    const auto xs = x.clone().requires_grad_(), ws = w.clone().requires_grad_(), bs = b.clone().requires_grad_();
    const auto y = lowbit::core::semi_sparse_linear(xs, ws, bs, "largest_abs", gradient);
    y.backward(gy);
    EXPECT_TRUE(torch::allclose(y, torch::matmul(x, wp.t()) + b, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(xs.grad(), torch::matmul(gy, wp), 1e-12, 1e-12));
    auto gw = torch::matmul(gy.reshape({-1, 24}).t(), x.reshape({-1, 32}));
    if (std::string(gradient) == "masked") gw = gw * mask;
    EXPECT_TRUE(torch::allclose(ws.grad(), gw, 1e-12, 1e-12)) << gradient;
    EXPECT_TRUE(torch::allclose(bs.grad(), gy.reshape({-1, 24}).sum(0), 1e-12, 1e-12));
  }
}

TEST(SemiSparseTraining, ActivationSparseMathMatchesTheMaskByHand) {
  torch::manual_seed(1);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  const auto x = torch::randn({8, 32}, opts), w = torch::randn({6, 32}, opts), gy = torch::randn({8, 6}, opts);
  auto [xp, mask] = lowbit::core::prune_2_4(x, "largest");
  for (const char* gradient : {"ste", "masked"}) {
    const auto xs = x.clone().requires_grad_(), ws = w.clone().requires_grad_();
    const auto y = lowbit::core::semi_sparse_activation_linear(xs, ws, std::nullopt, "largest", gradient);
    y.backward(gy);
    EXPECT_TRUE(torch::allclose(y, xp.matmul(w.t()), 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(ws.grad(), gy.t().matmul(xp), 1e-12, 1e-12));
    auto gx = gy.matmul(w);
    if (std::string(gradient) == "masked") gx = gx * mask;
    EXPECT_TRUE(torch::allclose(xs.grad(), gx, 1e-12, 1e-12)) << gradient;
  }
}

TEST(SemiSparseTraining, ConvertSummaryUsesTheSharedSkipRule) {
  Mlp model;
  auto summary = lowbit::sparse::convert_to_semi_sparse_training(model);  // default filter: measured faster only
  EXPECT_TRUE(summary.converted.empty());
  ASSERT_EQ(summary.skipped.size(), 3u);
  EXPECT_NE(summary.skipped[0].second.find("never faster than dense"), std::string::npos);
  EXPECT_NE(summary.skipped[2].second.find("multiples of 4"), std::string::npos);  // head: 16 -> 6

  summary = lowbit::sparse::convert_to_semi_sparse_training(model, {}, all_filter);
  EXPECT_EQ(summary.converted, (std::vector<std::string>{"fc1 (semi_sparse_weight)", "fc2 (semi_sparse_weight)"}));
  EXPECT_EQ(model.fc1->method().name(), "semi_sparse_weight");
  EXPECT_EQ(model.head->method().name(), "plain");
  // The Python face asks the same function (bound as lowbit._C.semi_sparse_skip_reason).
  EXPECT_EQ(lowbit::sparse::semi_sparse_skip_reason({}, 6, 16, c10::DeviceType::CPU, true), summary.skipped[0].second);

  summary = lowbit::sparse::convert_to_semi_sparse_training(model, {}, all_filter);
  EXPECT_EQ(summary.skipped[0], (std::pair<std::string, std::string>{"fc1", "already semi-sparse"}));

  // The forward is the pruned weight's; the reverse swap makes it dense again.
  const auto x = torch::randn({4, 32});
  auto [wp, mask] = lowbit::core::prune_2_4(model.fc1->weight.detach());
  EXPECT_TRUE(torch::allclose(model.fc1->forward(x), x.matmul(wp.t()) + model.fc1->bias, 1e-5, 1e-6));
  summary = lowbit::sparse::swap_semi_sparse_linear_with_linear(model);
  EXPECT_EQ(summary.converted.size(), 2u);
  EXPECT_TRUE(torch::allclose(model.fc1->forward(x), torch::nn::functional::linear(x, model.fc1->weight, model.fc1->bias)));
}

TEST(SemiSparseTraining, CudaShapeRuleAndSpeedTable) {
  using c10::DeviceType;
  EXPECT_FALSE(lowbit::core::semi_sparse_unsupported_reason(4096, 1024, DeviceType::CUDA).has_value());
  EXPECT_NE(lowbit::core::semi_sparse_unsupported_reason(4096, 1000, DeviceType::CUDA)->find("multiples of 128"),
            std::string::npos);
  EXPECT_FALSE(lowbit::core::semi_sparse_unsupported_reason(6, 16, DeviceType::CPU, /*activation=*/true).has_value());
  // No shape is measured faster yet, so on CUDA the default filter converts nothing.
  EXPECT_TRUE(lowbit::sparse::measured_speedups().empty());
  const auto reason = lowbit::sparse::semi_sparse_skip_reason({}, 4096, 1024, DeviceType::CUDA, false);
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("has not been measured faster"), std::string::npos);
  EXPECT_FALSE(lowbit::sparse::semi_sparse_skip_reason({}, 4096, 1024, DeviceType::CUDA, true).has_value());
}

TEST(SemiSparseTraining, ConfigErrors) {
  SemiSparseTrainingConfig config;
  config.algorithm = lowbit::core::PruneAlgorithm::LargestAbsRows;
  expect_error([&] { config.validate(); }, "not transposable");
  Mlp model;
  expect_error([&] { lowbit::sparse::convert_to_semi_sparse_training(model, config, all_filter); }, "not transposable");
  EXPECT_EQ(model.fc1->method().name(), "plain");
  expect_error([] { lowbit::sparse::parse_semi_sparse_target("input"); }, "allowed: 'weight', 'activation'");
  expect_error([] { lowbit::core::parse_semi_sparse_gradient("dense"); }, "allowed: 'ste', 'masked'");
  EXPECT_EQ(SemiSparseTrainingConfig{}.to_string(),
            "SemiSparseTrainingConfig(target='weight', algorithm='largest_abs', gradient='ste')");
}

TEST(SemiSparseTraining, ASparseModelTrains) {
  torch::manual_seed(0);
  Mlp model;
  SemiSparseTrainingConfig config;
  config.gradient = lowbit::core::SemiSparseGradient::Masked;
  lowbit::sparse::convert_to_semi_sparse_training(model, config, all_filter);
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(3e-3));
  const auto x = torch::randn({128, 32});
  const auto y = torch::randint(0, 6, {128});
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    const auto loss = torch::nn::functional::cross_entropy(model.forward(x), y);
    if (i == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.7 * first);
}

TEST(SemiSparseTraining, DenseAfterSparseCanStartFromThePrunedWeights) {
  torch::manual_seed(3);
  Mlp model;
  lowbit::sparse::convert_to_semi_sparse_training(model, {}, all_filter);
  const auto x = torch::randn({8, 32});
  torch::NoGradGuard no_grad;
  const auto sparse_out = model.forward(x);
  const auto summary = lowbit::sparse::swap_semi_sparse_linear_with_linear(model, /*prune_weights=*/true);
  EXPECT_EQ(summary.converted, (std::vector<std::string>{"fc1 (plain, pruned)", "fc2 (plain, pruned)"}));
  EXPECT_EQ(model.fc1->method().name(), "plain");
  EXPECT_TRUE(torch::allclose(model.forward(x), sparse_out, 1e-5, 1e-6));
  EXPECT_GE(model.fc1->weight.eq(0).to(torch::kFloat).mean().item<double>(), 0.48);
}
