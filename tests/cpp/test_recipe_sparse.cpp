// lowbit-train with sparse.*: 2:4 feed-forward weights, the switch to dense, exact resume across
// it, config errors, and the quality experiment (2:4 FFN vs dense validation loss on fortunes, and
// sparse-then-dense closing the gap) with loose bounds. Named test_recipe_* so that builds without
// the recipes leave it out (tests/cpp/CMakeLists.txt).
#include <gtest/gtest.h>

#include <lowbit/io/safetensors.h>
#include <lowbit/recipes/config.h>
#include <lowbit/recipes/pretrain.h>
#include <lowbit/recipes/recipe.h>
#include <lowbit/sparse/convert.h>

#include <ATen/ops/equal.h>

#include "recipe_test_support.h"

#include <cmath>
#include <filesystem>
#include <iostream>

namespace {

namespace fs = std::filesystem;
using namespace lowbit::recipes;

// pretrain_tiny shrunk to seconds (recipe_test_support.h), in float32 with AdamW: 2:4 and float8
// training do not combine.
lowbit::recipes::Config tiny(const std::string& out, std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"optim.name=adamw", "float8.enabled=false"});
  return recipe_test::tiny_pretrain(out, std::move(extra));
}

class RecipeSparse : public recipe_test::RecipeTestDir {};

TEST(SparseSchedule, DenseAfterStep) {
  using lowbit::sparse::dense_after_step;
  EXPECT_EQ(dense_after_step(8, 1.0), 8);  // never dense
  EXPECT_EQ(dense_after_step(8, 0.5), 4);
  EXPECT_EQ(dense_after_step(300, 0.7), 210);
  EXPECT_EQ(dense_after_step(8, 0.01), 1);  // at least one sparse step
  EXPECT_THROW(dense_after_step(8, 0.0), c10::Error);
  EXPECT_THROW(dense_after_step(8, 1.5), c10::Error);
  EXPECT_THROW(dense_after_step(-1, 0.5), c10::Error);
}

// The switch happens where the schedule says: the sparse-then-dense run is the sparse run, bit for
// bit, up to step dense_at, and differs after; the 2:4 run differs from the dense one from step 0.
TEST_F(RecipeSparse, SparseThenDenseSwitchesAtItsStep) {
  const PretrainResult dense = pretrain(tiny(out("dense"), {}), true);
  const PretrainResult sparse = pretrain(tiny(out("sparse"), {"sparse.enabled=true", "sparse.gradient=ste"}), true);
  const PretrainResult both = pretrain(
      tiny(out("both"), {"sparse.enabled=true", "sparse.gradient=ste", "sparse.dense_after_fraction=0.5"}), true);
  ASSERT_EQ(sparse.losses.size(), 8u);
  ASSERT_EQ(both.losses.size(), 8u);
  EXPECT_NE(sparse.losses[0], dense.losses[0]);  // the FFN weights are pruned in the first forward
  for (int i = 0; i < 4; ++i) EXPECT_EQ(both.losses[i], sparse.losses[i]) << "step " << i;
  // Step 4 is the first dense step, from the pruned weights: same function, different gradients.
  EXPECT_NEAR(both.losses[4], sparse.losses[4], 1e-6);
  EXPECT_NE(both.losses[7], sparse.losses[7]);
  for (double l : both.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(0.5 * (sparse.losses[6] + sparse.losses[7]), sparse.losses[0] - 0.1);  // it trains
  // sparse.dense_init=master: the same sparse steps, then the dense master weights as they are. Under
  // ste the pruned entries kept training without acting, so at the switch they act at once: the first
  // dense loss is not the sparse forward's.
  const PretrainResult master = pretrain(
      tiny(out("master"), {"sparse.enabled=true", "sparse.gradient=ste", "sparse.dense_after_fraction=0.5",
                           "sparse.dense_init=master"}),
      true);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(master.losses[i], sparse.losses[i]) << "step " << i;
  EXPECT_GT(std::abs(master.losses[4] - sparse.losses[4]), 1e-4);
  for (double l : master.losses) EXPECT_TRUE(std::isfinite(l));
  // The masked gradient (the recipes' default) is another run.
  const PretrainResult masked = pretrain(tiny(out("masked"), {"sparse.enabled=true"}), true);
  EXPECT_EQ(masked.losses[0], sparse.losses[0]);
  EXPECT_NE(masked.losses[7], sparse.losses[7]);
}

// N steps == k steps + checkpoint + resume + N - k, with k before, at and after the switch (step 4).
TEST_F(RecipeSparse, ResumeAcrossTheSwitchIsExact) {
  const std::vector<std::string> sp = {"sparse.enabled=true", "sparse.dense_after_fraction=0.5"};
  const PretrainResult full = pretrain(tiny(out("full"), sp), true);
  const auto a = lowbit::io::load_safetensors(full.checkpoint_dir + "/model.safetensors");
  for (int k : {2, 4, 6}) {
    const std::string dir = out("split" + std::to_string(k));
    auto first_args = sp, rest_args = sp;
    first_args.push_back("train.stop_at=" + std::to_string(k));
    rest_args.push_back("train.resume=true");
    const PretrainResult first = pretrain(tiny(dir, first_args), true);
    const PretrainResult rest = pretrain(tiny(dir, rest_args), true);
    ASSERT_EQ(rest.first_step, k);
    ASSERT_EQ(first.losses.size() + rest.losses.size(), 8u);
    for (int i = 0; i < 8; ++i) {
      const double resumed = i < k ? first.losses[i] : rest.losses[i - k];
      EXPECT_EQ(full.losses[i], resumed) << "split at " << k << ", step " << i;
    }
    const auto b = lowbit::io::load_safetensors(rest.checkpoint_dir + "/model.safetensors");
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, t] : a.tensors) EXPECT_TRUE(at::equal(t, b.tensors.at(name))) << k << " " << name;
  }
}

TEST_F(RecipeSparse, ConfigErrorsNameTheKeys) {
  auto message = [&](std::vector<std::string> extra) -> std::string {
    try {
      tiny(out("bad"), extra);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({"sparse.enabled=true", "float8.enabled=true"}).find("do not combine"), std::string::npos);
  EXPECT_NE(message({"sparse.dense_after_fraction=0"}).find("sparse.dense_after_fraction"), std::string::npos);
  EXPECT_NE(message({"sparse.dense_after_fraction=1.5"}).find("outside (0, 1]"), std::string::npos);
  EXPECT_NE(message({"sparse.gradient=dense"}).find("sparse.gradient"), std::string::npos);
  const std::string init = message({"sparse.dense_init=zero"});
  EXPECT_NE(init.find("sparse.dense_init"), std::string::npos) << init;
  EXPECT_NE(init.find("pruned"), std::string::npos) << init;
  EXPECT_NE(init.find("master"), std::string::npos) << init;
  // On a CUDA build: the 2:4 recipe's own rule; on a CPU build the device rule answers first.
  EXPECT_NE(message({"sparse.enabled=true", "train.device=cuda"}).find("train.device"), std::string::npos);
  // hidden_dim 66 is not a multiple of 4: the 2:4 shape rule (lowbit::core), once.
  EXPECT_NE(message({"sparse.enabled=true", "model.hidden_dim=66"}).find("cannot be 2:4"), std::string::npos);
  EXPECT_EQ(message({"sparse.enabled=false", "model.hidden_dim=66"}), "");
  EXPECT_FALSE(fs::exists(out("bad")));
}

// The quality experiment, one seed of what benchmarks/sparse_quality.py runs over five (README has the
// table): a Llama (dim 32, 2 layers, hidden 128) on fortunes for 600 steps, dense vs 2:4 FFN weights
// with the straight-through gradient (ste) vs ste then dense at 50% (from the pruned weights) vs the
// masked gradient. Measured over seeds 1-5 (CPU): ste 2:4 +0.029 ± 0.010 over dense, ste then dense
// +0.016 ± 0.011, masked 2:4 +0.003 ± 0.017; on every seed ste-then-dense < ste and masked < ste.
// Seed 1: dense 2.2747, ste +0.021, ste then dense +0.003, masked +0.004.
TEST_F(RecipeSparse, QualityTwoFourFfnAndSparseThenDense) {
  const std::vector<std::string> q = {"model.hidden_dim=128", "model.max_seq_len=64", "data.seq_len=64",
                                      "data.batch_size=8", "train.steps=600", "train.warmup_steps=50",
                                      "train.eval_batches=8", "train.log_every=100", "train.seed=1"};
  auto run = [&](const std::string& name, std::vector<std::string> extra) {
    auto o = q;
    o.insert(o.end(), extra.begin(), extra.end());
    return pretrain(tiny(out(name), o), true).val_loss;
  };
  const double dense = run("dense", {});
  const double ste = run("ste", {"sparse.enabled=true", "sparse.gradient=ste"});
  const double both = run("both", {"sparse.enabled=true", "sparse.gradient=ste", "sparse.dense_after_fraction=0.5"});
  const double masked = run("masked", {"sparse.enabled=true", "sparse.gradient=masked"});
  std::cout << "[quality] val loss: dense " << dense << ", 2:4 FFN ste " << ste << " (gap " << ste - dense
            << "), ste then dense at 50% " << both << " (gap " << both - dense << "), masked " << masked << " (gap "
            << masked - dense << ")\n";
  EXPECT_GT(ste - dense, 0.005);    // ste costs quality at this size
  EXPECT_LT(ste - dense, 0.08);     // but bounded
  EXPECT_LT(both, ste - 0.005);     // the dense tail recovers part of it
  EXPECT_LT(masked, ste - 0.005);   // the masked gradient costs less than ste
  EXPECT_LT(std::abs(masked - dense), 0.05);
}

}  // namespace
