// The recipe config loader: defaults composition, typed overrides, errors naming key and file:line.
#include <gtest/gtest.h>

#include <lowbit/recipes/config.h>
#include <lowbit/recipes/remove_tree.h>

#include "recipe_test_support.h"

#include <filesystem>
#include <fstream>
#include <string>


namespace {

namespace fs = std::filesystem;
using lowbit::recipes::Config;
using lowbit::recipes::ConfigError;
using lowbit::recipes::load_config;

// A fresh folder of small config files for one test.
class RecipeConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = recipe_test::fresh_test_dir("cfg");
    fs::create_directories(dir_ / "model");
    write("model/tiny.yaml", "model:\n  dim: 64\n  n_layers: 2\n  norm_eps: 1.0e-5\n  name: tiny\n");
    write("optim.yaml", "optim:\n  name: adamw\n  lr: 0.001\n  betas: [0.9, 0.95]\n  fused: false\n");
    write("main.yaml", "defaults:\n  - model/tiny\n  - optim\n");
  }
  void TearDown() override { lowbit::recipes::remove_tree(dir_.string()); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The message of the ConfigError `f` throws (fails the test if none).
  template <typename F>
  std::string error_of(F&& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a ConfigError";
    return "";
  }

  fs::path dir_;
};

TEST_F(RecipeConfig, ComposesDefaultsInOrderAndOwnKeysWin) {
  // A file without defaults may add keys; one with defaults may only override them.
  write("main.yaml", "defaults: [model/tiny, optim]\nmodel:\n  dim: 128\n");
  Config c = load_config(path("main.yaml"));
  EXPECT_EQ(c.get_int("model.dim"), 128);
  EXPECT_EQ(c.get_int("model.n_layers"), 2);
  EXPECT_EQ(c.get_string("optim.name"), "adamw");
  EXPECT_DOUBLE_EQ(c.get_float("optim.lr"), 0.001);
  EXPECT_EQ(c.origin("model.dim"), path("main.yaml") + ":3");
  EXPECT_EQ(c.origin("model.n_layers"), path("model/tiny.yaml") + ":3");
}

TEST_F(RecipeConfig, LaterDefaultsOverrideEarlierAndRecurse) {
  write("big.yaml", "defaults: [model/tiny]\nmodel:\n  dim: 4096\n");
  write("main.yaml", "defaults: [model/tiny, big, optim]\n");
  Config c = load_config(path("main.yaml"));
  EXPECT_EQ(c.get_int("model.dim"), 4096);
  EXPECT_EQ(c.get_int("model.n_layers"), 2);
}

TEST_F(RecipeConfig, OverridesAreTypeChecked) {
  write("main.yaml", "defaults: [model/tiny, optim]\n");
  Config c = load_config(path("main.yaml"),
                         {"model.dim=256", "optim.lr=3", "optim.fused=true", "optim.betas=[0.8, 0.9]", "model.name=7"});
  EXPECT_EQ(c.get_int("model.dim"), 256);
  EXPECT_DOUBLE_EQ(c.get_float("optim.lr"), 3.0);  // an int literal is a fine float
  EXPECT_TRUE(c.get_bool("optim.fused"));
  EXPECT_EQ(c.get_string("model.name"), "7");  // a string key keeps a string
  EXPECT_EQ(c.origin("model.dim"), "command line");
  // The dump reflects the overrides and loads back with the same types.
  Config again(YAML::Load(c.dump()), {});
  EXPECT_EQ(again.get_int("model.dim"), 256);
  EXPECT_DOUBLE_EQ(again.get_float("optim.lr"), 3.0);
  EXPECT_EQ(again.get_string("model.name"), "7");
  EXPECT_EQ(lowbit::recipes::value_kind(again.node("optim.lr")), lowbit::recipes::ValueKind::Float);

  std::string msg = error_of([&] { load_config(path("main.yaml"), {"model.dim=0.5"}); });
  EXPECT_NE(msg.find("'model.dim'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected int, got float"), std::string::npos) << msg;
  msg = error_of([&] { load_config(path("main.yaml"), {"optim.fused=yes please"}); });
  EXPECT_NE(msg.find("'optim.fused'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected bool"), std::string::npos) << msg;
  msg = error_of([&] { load_config(path("main.yaml"), {"optim.betas=[0.9, fast]"}); });
  EXPECT_NE(msg.find("'optim.betas'"), std::string::npos) << msg;
  msg = error_of([&] { load_config(path("main.yaml"), {"model=3"}); });
  EXPECT_NE(msg.find("expected map"), std::string::npos) << msg;
}

TEST_F(RecipeConfig, UnknownKeysAreErrorsNamingKeyAndFileLine) {
  std::string msg = error_of([&] { load_config(path("main.yaml"), {"model.dimm=3"}); });
  EXPECT_NE(msg.find("unknown config key 'model.dimm'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dim, n_layers"), std::string::npos) << msg;  // lists what exists
  msg = error_of([&] { load_config(path("main.yaml"), {"nosuch.key=1"}); });
  EXPECT_NE(msg.find("'nosuch"), std::string::npos) << msg;

  write("typo.yaml", "defaults: [model/tiny]\nmodel:\n  dim: 32\n  n_layer: 4\n");
  msg = error_of([&] { load_config(path("typo.yaml")); });
  EXPECT_NE(msg.find("'model.n_layer'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("typo.yaml") + ":4"), std::string::npos) << msg;

  write("badtype.yaml", "defaults: [model/tiny]\nmodel:\n  dim: wide\n");
  msg = error_of([&] { load_config(path("badtype.yaml")); });
  EXPECT_NE(msg.find("'model.dim'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("badtype.yaml") + ":3"), std::string::npos) << msg;
}

TEST_F(RecipeConfig, FileErrorsNameFileAndLine) {
  write("broken.yaml", "model:\n  dim: [1, 2\n  x: 3\n");
  std::string msg = error_of([&] { load_config(path("broken.yaml")); });
  EXPECT_NE(msg.find(path("broken.yaml") + ":"), std::string::npos) << msg;

  write("missing.yaml", "defaults:\n  - model/tiny\n  - model/huge\n");
  msg = error_of([&] { load_config(path("missing.yaml")); });
  EXPECT_NE(msg.find(path("missing.yaml") + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model/huge"), std::string::npos) << msg;

  write("a.yaml", "defaults: [b]\n");
  write("b.yaml", "defaults: [a]\n");
  msg = error_of([&] { load_config(path("a.yaml")); });
  EXPECT_NE(msg.find("cycle"), std::string::npos) << msg;

  msg = error_of([&] { load_config(path("nope.yaml")); });
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
}

TEST_F(RecipeConfig, TypedGettersNameTheKey) {
  Config c = load_config(path("main.yaml"));
  std::string msg = error_of([&] { c.get_int("model.name"); });
  EXPECT_NE(msg.find("'model.name'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("model/tiny.yaml") + ":5"), std::string::npos) << msg;
  msg = error_of([&] { c.get_float("train.stepz"); });
  EXPECT_NE(msg.find("'train.stepz'"), std::string::npos) << msg;
}

TEST_F(RecipeConfig, LoadOntoABaseLetsEveryFileSetItsKeys) {
  // A schema's defaults define the keys: any file may set them, an unknown one names file:line.
  const Config base(YAML::Load("model: {dim: 8, n_layers: 1, norm_eps: 1.0e-6, name: x}\n"), {});
  write("main.yaml", "defaults: [model/tiny]\nmodel:\n  dim: 128\n");
  Config c = lowbit::recipes::load_config_onto(base, path("main.yaml"), {"model.n_layers=3"});
  EXPECT_EQ(c.get_int("model.dim"), 128);
  EXPECT_EQ(c.get_int("model.n_layers"), 3);
  EXPECT_EQ(c.origin("model.dim"), path("main.yaml") + ":3");
  std::string msg = error_of([&] { lowbit::recipes::load_config_onto(base, path("optim.yaml"), {}); });
  EXPECT_NE(msg.find("unknown config key 'optim' (" + path("optim.yaml") + ":1)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a key of this recipe"), std::string::npos) << msg;
  // Other sections pass through when allowed (a tool reading the model section of a run's config).
  c = lowbit::recipes::load_config_onto(base, path("main.yaml"), {}, /*allow_other_sections=*/true);
  c = lowbit::recipes::load_config_onto(base, path("optim.yaml"), {}, true);
  EXPECT_EQ(c.get_string("optim.name"), "adamw");
}

}  // namespace
