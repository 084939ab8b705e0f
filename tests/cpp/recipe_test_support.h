// Shared by the recipe tests (test_recipe_*.cpp): pretrain_tiny shrunk to seconds, and output
// folders that carry the process id and the test's name, so concurrent runs of one test binary
// (ctest -j, two checkouts on one machine) never remove each other's files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <lowbit/recipes/config.h>
#include <lowbit/recipes/recipe.h>
#include <lowbit/recipes/remove_tree.h>

namespace recipe_test {

inline const std::string& pretrain_tiny_yaml() {
  static const std::string path = std::string(LOWBIT_RECIPES_DIR) + "/configs/pretrain_tiny.yaml";
  return path;
}

// pretrain_tiny shrunk to seconds: 2 layers of width 32, 4 x 32 tokens per step, 8 steps; `extra`
// overrides come last.
inline lowbit::recipes::Config tiny_pretrain(const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> o = {"model.dim=32", "model.n_layers=2", "model.n_heads=2", "model.n_kv_heads=1",
                                "model.hidden_dim=64", "model.max_seq_len=32", "data.seq_len=32",
                                "data.batch_size=4", "train.steps=8", "train.warmup_steps=2", "train.eval_batches=2",
                                "train.eval_every=0", "train.checkpoint_every=0", "train.log_every=1",
                                "optim.lr=0.01", "train.output_dir=" + out};
  o.insert(o.end(), extra.begin(), extra.end());
  return lowbit::recipes::recipe("pretrain").schema.load(pretrain_tiny_yaml(), o);
}

// <tmp>/lowbit_<tag>_<pid>_<current test's name>, empty (removed first if it was there).
inline std::filesystem::path fresh_test_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("lowbit_" + tag + "_" + std::to_string(::getpid()) + "_" + info->name());
  lowbit::recipes::remove_tree(dir.string());
  return dir;
}

inline bool fortunes_installed() { return std::filesystem::is_directory("/usr/share/games/fortunes"); }

// A fixture whose tests train on fortunes (skipped without them) in a fresh folder, removed after.
class RecipeTestDir : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fortunes_installed()) GTEST_SKIP() << "fortunes not installed";
    dir_ = fresh_test_dir(::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name());
  }
  void TearDown() override {
    if (!dir_.empty()) lowbit::recipes::remove_tree(dir_.string());
  }
  std::string out(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

}  // namespace recipe_test
