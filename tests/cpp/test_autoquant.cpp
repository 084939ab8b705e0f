// lowbit::inference::autoquant through the C++ API: recording, the choice rule (fastest within
// min_sqnr, measured numbers in the plan), applying, JSON round trips and bad plans.
#include <gtest/gtest.h>

#include <torch/nn/module.h>

#include <ATen/ops/equal.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/randn.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <lowbit/inference/autoquant.h>
#include <lowbit/inference/quantized_linear_method.h>

#include "expect_error.h"

namespace {

using namespace lowbit;
using inference::AutoquantOptions;
using inference::AutoquantPlan;

constexpr int64_t K = 256, H = 384;

// fc1 -> gelu -> fc2; `unused` is never called by forward.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    torch::manual_seed(0);
    fc1 = register_module("fc1", nn::Linear(K, H));
    fc2 = register_module("fc2", nn::Linear(H, K));
    unused = register_module("unused", nn::Linear(K, K));
    to(at::kBFloat16);
  }
  at::Tensor forward(const at::Tensor& x) { return fc2->forward(at::gelu(fc1->forward(x))); }
  nn::Linear fc1{nullptr}, fc2{nullptr}, unused{nullptr};
};
TORCH_MODULE(Net);

at::Tensor input(int64_t rows) {
  torch::manual_seed(1);
  return at::randn({rows, K}).to(at::kBFloat16);
}

AutoquantOptions quick(std::vector<std::string> candidates, std::optional<double> min_sqnr = std::nullopt) {
  AutoquantOptions o;
  o.candidates = std::move(candidates);
  o.min_sqnr = min_sqnr;
  o.warmup = 1;
  o.iters = 3;
  return o;
}

// The plan's choice must be the fastest measured candidate that meets min_sqnr.
void expect_choice_follows_the_rule(const AutoquantPlan& plan) {
  for (const auto& l : plan.layers) {
    SCOPED_TRACE(l.name);
    std::string best = inference::kAutoquantNone;
    double best_ms = INFINITY;
    for (const auto& c : l.candidates) {
      if (!c.skipped.empty() || (plan.min_sqnr && c.sqnr_db < *plan.min_sqnr)) continue;
      EXPECT_GT(c.ms, 0.0) << c.config;
      if (c.ms < best_ms) best = c.config, best_ms = c.ms;
    }
    EXPECT_EQ(l.chosen, best);
  }
}

TEST(Autoquant, RecordsShapesTimesCandidatesAndAppliesTheFastest) {
  Net net;
  const at::Tensor x = input(32);
  AutoquantPlan plan = inference::autoquant(
      *net, [&] { net->forward(x), net->forward(x), net->forward(input(4)); },
      quick({"int8wo", "int4wo-128", "uint4wo"}));
  ASSERT_EQ(plan.layers.size(), 2u);  // `unused` never ran
  EXPECT_EQ(plan.find("unused"), nullptr);
  const auto* fc1 = plan.find("fc1");
  ASSERT_NE(fc1, nullptr);
  EXPECT_EQ(fc1->out_features, H);
  EXPECT_EQ(fc1->dtype, "bfloat16");
  ASSERT_EQ(fc1->tokens.size(), 2u);
  EXPECT_EQ(fc1->tokens[0], (std::pair<int64_t, int64_t>{32, 2}));
  EXPECT_EQ(fc1->tokens[1], (std::pair<int64_t, int64_t>{4, 1}));
  ASSERT_EQ(fc1->candidates.size(), 4u);  // none + three
  expect_choice_follows_the_rule(plan);
  for (const auto& l : plan.layers) {
    const nn::LinearImpl& layer = l.name == "fc1" ? *net->fc1 : *net->fc2;
    EXPECT_EQ(layer.method().name(), l.chosen == "none" ? "plain" : l.chosen);
  }
  EXPECT_EQ(net->unused->method().name(), "plain");
}

TEST(Autoquant, MinSqnrExcludesLossyFormats) {
  Net net;
  const at::Tensor x = input(16);
  AutoquantOptions o = quick({"int4wo-128", "int8wo"}, 30.0);
  o.include_unquantized = false;
  AutoquantPlan plan = inference::autoquant(*net, [&] { net->forward(x); }, o);
  for (const auto& l : plan.layers) {
    for (const auto& c : l.candidates) {
      if (c.config == "int4wo-128") EXPECT_LT(c.sqnr_db, 30.0);  // int4 sits near 24 dB
      if (c.config == "int8wo") EXPECT_GT(c.sqnr_db, 30.0);
    }
    EXPECT_EQ(l.chosen, "int8wo");
  }
}

TEST(Autoquant, PlanRoundTripsThroughJsonAndReproducesTheModel) {
  Net a;
  const at::Tensor x = input(8);
  AutoquantOptions o = quick({"int8wo", "uint4wo", "fp6_e3m2"});
  o.include_unquantized = false;
  const AutoquantPlan plan = inference::autoquant(*a, [&] { a->forward(x); }, o);
  const std::string path = (std::filesystem::temp_directory_path() / "lowbit_autoquant_plan.json").string();
  plan.save(path);
  const AutoquantPlan loaded = AutoquantPlan::load(path);
  EXPECT_EQ(loaded.to_json(), plan.to_json());
  Net b;
  const auto summary = inference::apply_autoquant_plan(*b, loaded);
  EXPECT_EQ(summary.converted.size(), 2u) << summary.to_string();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(a->forward(x), b->forward(x)));
  std::filesystem::remove(path);
}

TEST(Autoquant, BadCandidatesAndPlansAreErrorsThatChangeNothing) {
  Net net;
  const at::Tensor x = input(8);
  bool ran = false;
  expect_error([&] { inference::autoquant(*net, [&] { ran = true; }, quick({"int9wo"})); },
                                "unknown config shorthand 'int9wo'");
  EXPECT_FALSE(ran);  // rejected before the example runs

  AutoquantPlan plan = inference::autoquant(*net, [&] { net->forward(x); }, quick({"int8wo"}));
  std::string json = plan.to_json();
  auto mutate = [&](const std::string& from, const std::string& to) {
    std::string s = json;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  expect_error([&] { AutoquantPlan::from_json(mutate("\"version\": 1", "\"version\": 2")); },
                                "version 2 is not supported");
  expect_error([&] { AutoquantPlan::from_json(mutate("\"chosen\"", "\"chosen\": \"int9wo\", \"x\"")); },
                                "unknown key 'x'");
  expect_error([&] { AutoquantPlan::from_json(json.substr(0, json.size() / 2)); }, "malformed JSON");
  expect_error([&] { AutoquantPlan::from_json("{\"format\": \"other\"}"); }, "not an autoquant plan");

  torch::nn::Module small;  // has fc2 but not fc1: nothing may change
  auto fc2 = small.register_module("fc2", nn::Linear(H, K));
  AutoquantPlan forced = plan;
  for (auto& l : forced.layers) l.chosen = "int8wo";
  expect_error([&] { inference::apply_autoquant_plan(small, forced); }, "has no lowbit::nn::Linear");
  EXPECT_EQ(fc2->method().name(), "plain");
  EXPECT_GT(fc2->weight.numel(), 0);
}

}  // namespace
