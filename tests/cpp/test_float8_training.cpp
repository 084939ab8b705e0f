// float8 training through the C++ face (emulate=true on CPU): per-recipe numerics, training
// parity with the high-precision twin, convert summaries and all-or-nothing conversion.
// Bounds as in tests/python/test_float8_training.py (e4m3 ~31 dB per cast; floors 20 / 15 dB).
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <lowbit/float8/convert.h>
#include <lowbit/float8/float8_linear_method.h>
#include <lowbit/nn/linear.h>

namespace {

double sqnr_db(const at::Tensor& ref, const at::Tensor& x) {
  return 20 * std::log10((ref.norm() / (ref - x).norm()).item<double>());
}

lowbit::float8::Float8LinearConfig emulated(const std::string& recipe) {
  auto config = lowbit::float8::Float8LinearConfig::from_recipe_name(recipe);
  config.emulate = true;
  return config;
}

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", lowbit::nn::Linear(32, 64));
    fc2 = register_module("fc2", lowbit::nn::Linear(64, 16));
  }
  at::Tensor forward(const at::Tensor& x) { return fc2->forward(torch::gelu(fc1->forward(x))); }
  lowbit::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// Held-out accuracy after `steps` AdamW steps on labels from a fixed random teacher.
double train_accuracy(Mlp& model, int steps) {
  torch::manual_seed(0);
  const auto teacher = torch::randn({32, 10});
  torch::optim::AdamW opt(model.parameters(), torch::optim::AdamWOptions(3e-3));
  for (int i = 0; i < steps; ++i) {
    const auto x = torch::randn({64, 32});
    const auto y = torch::tanh(x).matmul(teacher).argmax(-1);
    const auto loss = torch::nn::functional::cross_entropy(model.forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({4096, 32});
  const auto y = torch::tanh(x).matmul(teacher).argmax(-1);
  return model.forward(x).argmax(-1).eq(y).to(torch::kFloat).mean().item<double>();
}

}  // namespace

class Float8Recipes : public ::testing::TestWithParam<std::string> {};

TEST_P(Float8Recipes, SingleLinearSqnr) {
  torch::manual_seed(0);
  lowbit::nn::Linear ref(256, 128);
  lowbit::nn::Linear f8(256, 128);
  {
    torch::NoGradGuard g;
    f8->weight.copy_(ref->weight);
    f8->bias.copy_(ref->bias);
  }
  const auto summary = lowbit::float8::convert_to_float8_training(*f8, emulated(GetParam()));
  ASSERT_EQ(summary.converted.size(), 1u);
  EXPECT_EQ(f8->method().name(), "float8_" + GetParam());

  const auto x = torch::randn({4, 64, 256});
  const auto x_ref = x.clone().requires_grad_(), x_f8 = x.clone().requires_grad_();
  const auto y_ref = ref->forward(x_ref), y_f8 = f8->forward(x_f8);
  const auto grad = torch::randn_like(y_ref);
  y_ref.backward(grad);
  y_f8.backward(grad);
  EXPECT_GE(sqnr_db(y_ref, y_f8), 20);
  EXPECT_GE(sqnr_db(x_ref.grad(), x_f8.grad()), 15);
  EXPECT_GE(sqnr_db(ref->weight.grad(), f8->weight.grad()), 15);
  EXPECT_TRUE(torch::allclose(ref->bias.grad(), f8->bias.grad(), 1e-4, 1e-4));
}

TEST_P(Float8Recipes, TrainsLikeTheHighPrecisionTwin) {
  torch::manual_seed(1);
  Mlp plain;
  Mlp f8;
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < plain.parameters().size(); ++i) f8.parameters()[i].copy_(plain.parameters()[i]);
  }
  lowbit::float8::convert_to_float8_training(f8, emulated(GetParam()));
  const double acc_plain = train_accuracy(plain, 200);
  const double acc_f8 = train_accuracy(f8, 200);
  EXPECT_GT(acc_plain, 0.7);
  EXPECT_GE(acc_f8, acc_plain - 0.03) << "float8 " << acc_f8 << " vs plain " << acc_plain;
}

INSTANTIATE_TEST_SUITE_P(Recipes, Float8Recipes,
                         ::testing::Values("tensorwise", "rowwise", "rowwise_with_gw_hp"));

TEST(Float8Convert, SummaryReportsSkipsAndPlainTorchLinears) {
  struct Model : torch::nn::Module {
    Model() {
      register_module("ok", lowbit::nn::Linear(32, 32));
      register_module("odd", lowbit::nn::Linear(30, 32));
      register_module("plain", torch::nn::Linear(32, 32));
    }
  } model;
  const auto summary = lowbit::float8::convert_to_float8_training(model, emulated("tensorwise"));
  ASSERT_EQ(summary.converted.size(), 1u);
  EXPECT_EQ(summary.converted[0], "ok (float8_tensorwise)");
  ASSERT_EQ(summary.skipped.size(), 2u);
  const std::string text = summary.to_string();
  EXPECT_NE(text.find("odd (in_features=30"), std::string::npos) << text;
  EXPECT_NE(text.find("plain (torch::nn::Linear cannot be converted"), std::string::npos) << text;

  // Converting again skips what is already float8; a filter narrows the selection.
  const auto again = lowbit::float8::convert_to_float8_training(model, emulated("tensorwise"));
  EXPECT_TRUE(again.converted.empty());
  auto config = emulated("rowwise");
  config.pad_inner_dim = true;
  const auto filtered = lowbit::float8::convert_to_float8_training(
      model, config, [](const std::string& name, const lowbit::nn::LinearImpl&) { return name == "odd"; });
  ASSERT_EQ(filtered.converted.size(), 1u);
  EXPECT_EQ(filtered.converted[0], "odd (float8_rowwise)");
}

TEST(Float8Convert, FailedConvertLeavesTheModelUnchanged) {
  Mlp model;
  auto config = lowbit::float8::Float8LinearConfig::from_recipe_name("tensorwise");  // emulate=false on CPU
  EXPECT_THROW(
      {
        try {
          lowbit::float8::convert_to_float8_training(model, config);
        } catch (const c10::Error& e) {
          EXPECT_NE(std::string(e.what()).find("emulate=true"), std::string::npos);
          throw;
        }
      },
      c10::Error);
  EXPECT_EQ(model.fc1->method().name(), "plain");
  EXPECT_EQ(model.fc2->method().name(), "plain");
}

TEST(Float8Config, RecipesAndErrors) {
  const auto rowwise = lowbit::float8::Float8LinearConfig::from_recipe_name("rowwise");
  EXPECT_EQ(rowwise.recipe, lowbit::float8::Float8Recipe::Rowwise);
  EXPECT_TRUE(rowwise.round_scales_to_power_of_2);
  EXPECT_THROW(lowbit::float8::Float8LinearConfig::from_recipe_name("fp4"), c10::Error);
  auto bad = rowwise;
  bad.force_recompute_fp8_weight_in_bwd = true;
  EXPECT_THROW(bad.validate(), c10::Error);
}

TEST(Float8Training, ParametersKeepNamesAndDtypes) {
  Mlp model;
  const auto before = model.named_parameters().keys();
  lowbit::float8::convert_to_float8_training(model, emulated("tensorwise"));
  EXPECT_EQ(model.named_parameters().keys(), before);
  const auto x = torch::randn({8, 32});
  model.forward(x).sum().backward();
  for (const auto& p : model.parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().scalar_type(), p.scalar_type());
  }
}
