// lowbit-train's recipe (lowbit::recipes::pretrain): a few steps with each optimizer in float8,
// the schedule, config errors, and exact resume (N steps == k steps + save + resume + N - k).
#include <gtest/gtest.h>

#include <lowbit/io/safetensors.h>
#include <lowbit/recipes/config.h>
#include <lowbit/recipes/pretrain.h>
#include <lowbit/recipes/recipe.h>

#include <ATen/ops/equal.h>

#include "recipe_test_support.h"

#include <cmath>
#include <filesystem>

namespace {

namespace fs = std::filesystem;
using namespace lowbit::recipes;

// pretrain_tiny shrunk to seconds (recipe_test_support.h).
constexpr auto tiny = &recipe_test::tiny_pretrain;

class RecipeTrain : public recipe_test::RecipeTestDir {};

TEST(RecipeSchedule, WarmupThenCosine) {
  EXPECT_DOUBLE_EQ(lr_at(0, 1.0, 10, 110, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 1.0, 10, 110, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, 1.0, 10, 110, 0.1), 1.0);
  EXPECT_NEAR(lr_at(60, 1.0, 10, 110, 0.1), 0.55, 1e-12);  // halfway down the cosine
  EXPECT_NEAR(lr_at(110, 1.0, 10, 110, 0.1), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(500, 1.0, 10, 110, 0.1), 0.1, 1e-12);
}

TEST_F(RecipeTrain, EachOptimizerTrainsInFloat8) {
  for (const std::string name : {"adamw", "adamw8bit", "adamw4bit"}) {
    const PretrainResult r = pretrain(tiny(out(name), {"optim.name=" + name}), /*quiet=*/true);
    ASSERT_EQ(r.losses.size(), 8u) << name;
    for (double l : r.losses) EXPECT_TRUE(std::isfinite(l)) << name;
    // The loss falls: the last two steps average below the first.
    EXPECT_LT(0.5 * (r.losses[6] + r.losses[7]), r.losses[0] - 0.1) << name;
    EXPECT_TRUE(std::isfinite(r.val_loss));
    EXPECT_TRUE(fs::exists(fs::path(r.checkpoint_dir) / "model.safetensors"));
    EXPECT_TRUE(fs::exists(fs::path(out(name)) / "config.yaml"));
  }
}

// Train N == train k, checkpoint, resume, train N - k: the same losses and parameters, bit for bit.
void expect_exact_resume(const std::string& root, const std::string& optim) {
  const PretrainResult full = pretrain(tiny(root + "/full", {"optim.name=" + optim}), true);
  const PretrainResult first =
      pretrain(tiny(root + "/split", {"optim.name=" + optim, "train.stop_at=3"}), true);
  const PretrainResult rest = pretrain(tiny(root + "/split", {"optim.name=" + optim, "train.resume=true"}), true);
  ASSERT_EQ(first.losses.size(), 3u);
  ASSERT_EQ(rest.first_step, 3);
  ASSERT_EQ(rest.losses.size(), 5u);
  for (int i = 0; i < 8; ++i) {
    const double resumed = i < 3 ? first.losses[i] : rest.losses[i - 3];
    EXPECT_EQ(full.losses[i], resumed) << optim << " step " << i;
  }
  const auto a = lowbit::io::load_safetensors(full.checkpoint_dir + "/model.safetensors");
  const auto b = lowbit::io::load_safetensors(rest.checkpoint_dir + "/model.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) EXPECT_TRUE(at::equal(t, b.tensors.at(name))) << optim << " " << name;
  EXPECT_EQ(a.metadata.at("step"), "8");
}

TEST_F(RecipeTrain, ResumeIsExactWithAdamW8bit) { expect_exact_resume(dir_.string(), "adamw8bit"); }
TEST_F(RecipeTrain, ResumeIsExactWithAdamW) { expect_exact_resume(dir_.string(), "adamw"); }

TEST_F(RecipeTrain, AdamWFp8Trains) {
  const PretrainResult r = pretrain(tiny(out("fp8"), {"optim.name=adamwfp8", "float8.enabled=false"}), true);
  ASSERT_EQ(r.losses.size(), 8u);
  EXPECT_LT(0.5 * (r.losses[6] + r.losses[7]), r.losses[0] - 0.1);
}

TEST_F(RecipeTrain, BadValuesAreErrorsBeforeAnyWork) {
  EXPECT_THROW(tiny(out("bad"), {"optim.name=sgd"}), ConfigError);
  EXPECT_THROW(tiny(out("bad"), {"train.stepz=3"}), ConfigError);
  EXPECT_THROW(tiny(out("bad"), {"train.steps=many"}), ConfigError);
  // A config that skipped the schema is checked again by pretrain() itself, before it creates anything.
  Config c = load_config_onto(recipe("pretrain").schema.defaults(), recipe_test::pretrain_tiny_yaml(), {"train.output_dir=" + out("raw")});
  c.apply_override("train.steps=0");
  EXPECT_THROW(pretrain(c, true), ConfigError);
  EXPECT_FALSE(fs::exists(out("raw")));
  c = tiny(out("compile"), {"train.compile=true"});
  EXPECT_THROW(pretrain(c, true), ConfigError);  // torch.compile is Python-only: an error, not ignored
  EXPECT_FALSE(fs::exists(out("compile")));
}

}  // namespace
