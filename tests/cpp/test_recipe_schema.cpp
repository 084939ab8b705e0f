// What the recipes accept: the schema's value checks and cross-key rules (errors name the key and
// the allowed values, all at once), the command line and --help, and the binaries themselves
// (lowbit-train, lowbit-llama-forward) rejecting bad values before creating anything.
#include <gtest/gtest.h>

#include <lowbit/recipes/keys.h>
#include <lowbit/recipes/recipe.h>
#include <lowbit/recipes/remove_tree.h>

#include "recipe_test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <string>

namespace {

namespace fs = std::filesystem;
using namespace lowbit::recipes;

const std::string kConfigs = std::string(LOWBIT_RECIPES_DIR) + "/configs";

// The ConfigError message of loading `config` for `recipe_name` with `overrides` ("" if none).
std::string load_error(const std::string& recipe_name, const std::string& config,
                       const std::vector<std::string>& overrides) {
  try {
    recipe(recipe_name).schema.load(kConfigs + "/" + config, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

void expect_has(const std::string& text, const std::string& phrase) {
  EXPECT_NE(text.find(phrase), std::string::npos) << "missing: " << phrase << "\nin: " << text;
}

// The values issue 14 item 8 lists: each is an error naming the key and what is allowed.
TEST(RecipeSchema, BadValuesNameTheKeyAndTheAllowedValues) {
  struct Case {
    std::string override_, phrases[2];
  };
  const Case cases[] = {
      {"optim.name=sgd", {"config key 'optim.name' (command line): 'sgd'", "allowed: adamw, adamw8bit, adamw4bit, adamwfp8"}},
      {"optim.lr=-1", {"config key 'optim.lr' (command line)", "allowed: > 0"}},
      {"float8.recipe=bogus", {"config key 'float8.recipe'", "allowed: tensorwise, rowwise, rowwise_with_gw_hp"}},
      {"model.dim=90", {"model.dim (90) must be a multiple of model.n_heads (4)", "model.dim: command line"}},
      {"model.dim=100", {"model.dim / model.n_heads (head_dim 25) must be even", "model.dim: command line"}},
      {"model.n_kv_heads=3", {"model.n_heads (4) must be a multiple of model.n_kv_heads (3)", ""}},
      {"train.device=gpu", {"config key 'train.device' (command line): 'gpu' is not a device name", "allowed: cpu, cuda"}},
      {"train.steps=0", {"config key 'train.steps' (command line): '0' is out of range", "allowed: > 0"}},
      {"data.seq_len=0", {"config key 'data.seq_len'", "allowed: > 0"}},
      {"data.seq_len=512", {"data.seq_len (512) exceeds model.max_seq_len (256)", ""}},
      {"optim.betas=[0.9]", {"optim.betas needs exactly 2 values", ""}},
      {"optim.betas=[0.9, 1.5]", {"config key 'optim.betas' (command line): element 1", "[0, 1)"}},
      {"train.min_lr_ratio=2", {"config key 'train.min_lr_ratio'", "0 <= value <= 1"}},
      {"data.fortunes_dir=/nonexistent", {"no folder '/nonexistent'", "allowed: an existing folder"}},
      {"float8.emulate=false", {"float8.emulate=false runs real fp8 GEMMs", "train.device=cpu"}},
  };
  for (const auto& c : cases) {
    const std::string msg = load_error("pretrain", "pretrain_tiny.yaml", {c.override_});
    ASSERT_FALSE(msg.empty()) << c.override_ << " was accepted";
    for (const auto& p : c.phrases) {
      if (!p.empty()) expect_has(msg, p);
    }
  }
  EXPECT_EQ(load_error("pretrain", "pretrain_tiny.yaml", {"optim.name=adamwfp8", "train.steps=1"}), "");
}

TEST(RecipeSchema, QuantizeConfigsEntriesAreShorthands) {
  if (!recipe_test::fortunes_installed()) GTEST_SKIP() << "fortunes not installed";
  const fs::path ckpt = recipe_test::fresh_test_dir("schema");
  fs::create_directories(ckpt);
  std::ofstream(ckpt / "model.safetensors") << "";
  const std::string at = "finetune.checkpoint=" + ckpt.string();
  std::string msg = load_error("finetune_then_quantize", "finetune_quantize_tiny.yaml",
                               {at, "quantize.configs=[none, int9wo, int8wo]"});
  expect_has(msg, "config key 'quantize.configs' (command line): element 1: 'int9wo' is not a quantize_ shorthand");
  expect_has(msg, "valid: none, autoquant, int4wo");
  EXPECT_EQ(load_error("finetune_then_quantize", "finetune_quantize_tiny.yaml",
                       {at, "quantize.configs=[none, int4wo-32, fp6_e3m2, uint2wo, autoquant]"}),
            "");
  msg = load_error("finetune_then_quantize", "finetune_quantize_tiny.yaml", {at, "model.max_seq_len=32"});
  expect_has(msg, "quantize.prompt (35 bytes) + quantize.generate_tokens must fit in model.max_seq_len (32)");
  msg = load_error("finetune_then_quantize", "finetune_quantize_tiny.yaml", {"finetune.checkpoint=/nonexistent"});
  expect_has(msg, "no model.safetensors in '/nonexistent' (run lowbit-train first)");
  msg = load_error("finetune_then_quantize", "finetune_quantize_tiny.yaml", {at, "finetune.mode=lora"});
  expect_has(msg, "allowed: none, plain, qat");
  lowbit::recipes::remove_tree(ckpt.string());
}

TEST(RecipeSchema, EveryProblemIsReportedAtOnce) {
  const std::string msg = load_error("pretrain", "pretrain_tiny.yaml", {"optim.name=sgd", "train.steps=0", "model.dim=90"});
  expect_has(msg, "3 config problems:");
  expect_has(msg, "'optim.name'");
  expect_has(msg, "'train.steps'");
  expect_has(msg, "model.dim (90)");
}

TEST(RecipeSchema, FilesMaySetOnlyDeclaredKeys) {
  const fs::path dir = recipe_test::fresh_test_dir("schema");
  fs::create_directories(dir);
  std::ofstream(dir / "typo.yaml") << "defaults: [" << kConfigs << "/pretrain_tiny]\ntrain:\n  stepz: 3\n";
  std::string msg;
  try {
    recipe("pretrain").schema.load((dir / "typo.yaml").string());
  } catch (const ConfigError& e) {
    msg = e.what();
  }
  expect_has(msg, "unknown config key 'train.stepz' (" + (dir / "typo.yaml").string() + ":3)");
  expect_has(msg, "known keys under 'train': steps, seed, device");
  lowbit::recipes::remove_tree(dir.string());
}

TEST(RecipeSchema, DeclarationsAreChecked) {
  Schema s;
  s.key("a.b", Type::Int, "1", "help");
  EXPECT_THROW(s.key("a.b", Type::Int, "2", "again"), ConfigError);
  EXPECT_THROW(s.key("nodot", Type::Int, "2", "x"), ConfigError);
  EXPECT_THROW(s.key("a.c", Type::Int, "[1, 2", "broken YAML"), ConfigError);
  s.key("a.f", Type::Float, "1", "an int literal default of a float key").key("a.s", Type::String, "123", "text");
  const Config d = s.defaults();
  EXPECT_EQ(value_kind(d.node("a.f")), ValueKind::Float);
  EXPECT_EQ(value_kind(d.node("a.s")), ValueKind::String);
  EXPECT_TRUE(s.problems(d).empty());
}

TEST(RecipeSchema, HelpListsEveryKeyWithTypeAndValue) {
  for (const std::string name : recipe_names()) {
    const Recipe& r = recipe(name);
    CommandLine cl;
    cl.config = r.default_config;
    const std::string help = help_text(r, "prog", cl, {kConfigs});
    expect_has(help, usage(r, "prog"));
    for (const auto& k : r.schema.keys()) expect_has(help, "    " + k.key + " (" + k.type.name() + ") = ");
  }
  CommandLine cl;
  cl.config = "pretrain_tiny";
  const std::string help = help_text(recipe("pretrain"), "lowbit-train", cl, {kConfigs});
  expect_has(help, "optim.name (string) = adamw8bit   [optim/adamw8bit.yaml:3]");
  expect_has(help, "allowed: adamw, adamw8bit, adamw4bit, adamwfp8");
  expect_has(help, "train.steps (int) = 300   [pretrain_tiny.yaml:");
}

TEST(RecipeSchema, CommandLine) {
  const Recipe& train = recipe("pretrain");
  CommandLine cl = parse_command_line(train, {"--config", "x.yaml", "a.b=1", "c=2"}, "lowbit-train");
  EXPECT_EQ(cl.config, "x.yaml");
  EXPECT_TRUE(cl.config_given);
  ASSERT_EQ(cl.overrides.size(), 2u);
  EXPECT_EQ(cl.overrides[1], "c=2");
  EXPECT_TRUE(parse_command_line(train, {"train.steps=oops", "--help"}, "p").help);
  EXPECT_TRUE(parse_command_line(train, {"-h"}, "p").help);
  cl = parse_command_line(train, {}, "p");
  EXPECT_EQ(cl.config, "pretrain_tiny");
  EXPECT_FALSE(cl.config_given);
  try {
    parse_command_line(train, {"--steps", "3"}, "lowbit-train");
    ADD_FAILURE() << "accepted --steps";
  } catch (const ConfigError& e) {
    expect_has(e.what(), "unknown option '--steps'");
    expect_has(e.what(), "usage: lowbit-train [--config PATH|NAME] [key.sub=value ...]");
  }
  EXPECT_THROW(parse_command_line(train, {"steps"}, "p"), ConfigError);
  const Recipe& fwd = recipe("llama_forward");
  cl = parse_command_line(fwd, {"--config", "m.yaml", "w", "model.dim=64", "t", "o"}, "p");
  EXPECT_EQ(cl.positionals, (std::vector<std::string>{"w", "t", "o"}));
  EXPECT_THROW(parse_command_line(fwd, {"--config", "m.yaml", "w"}, "p"), ConfigError);
  EXPECT_THROW(parse_command_line(fwd, {"w", "t", "o"}, "p"), ConfigError);  // no default config
  EXPECT_THROW(recipe("nosuch"), ConfigError);
}

TEST(RecipeSchema, ConfigNamesResolveInTheConfigFolders) {
  EXPECT_EQ(resolve_config("pretrain_tiny", {"/nonexistent", kConfigs}), kConfigs + "/pretrain_tiny.yaml");
  EXPECT_EQ(resolve_config("pretrain_tiny.yaml", {kConfigs}), kConfigs + "/pretrain_tiny.yaml");
  EXPECT_THROW(resolve_config("nosuch", {kConfigs}), ConfigError);
  EXPECT_THROW(resolve_config("some/dir/pretrain_tiny", {kConfigs}), ConfigError);
}

TEST(RecipeSchema, PlanSaysWhatARunWillDo) {
  const Recipe& r = recipe("pretrain");
  const CommandLine cl = parse_command_line(r, {}, "lowbit-train");
  const std::string path = resolve_config(cl.config, {kConfigs});
  const std::string plan = plan_text(r, r.schema.load(path), path, cl);
  expect_has(plan, "pretrain: pretrain a Llama of ");
  expect_has(plan, "300 steps of 8 x 128 tokens on cpu, adamw8bit");
  expect_has(plan, "float8 tensorwise (emulated)");
  expect_has(plan, "go to outputs/pretrain_tiny");
  expect_has(plan, "(the default; --config picks another)");
}

// ---- the binaries, run as a user runs them ----------------------------------------------

struct ProcessRun {
  int status = -1;
  std::string out, err;
};

ProcessRun run(const std::string& binary, const std::string& args) {
  // One folder per process and call: ctest -j runs these tests side by side.
  static int calls = 0;
  const fs::path dir = fs::temp_directory_path() /
                       ("lowbit_schema_run_" + std::to_string(::getpid()) + "_" + std::to_string(calls++));
  fs::create_directories(dir);
  const std::string out = (dir / "out.txt").string(), err = (dir / "err.txt").string();
  const int raw = std::system((binary + " " + args + " >" + out + " 2>" + err).c_str());
  ProcessRun r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::stringstream o, e;
  o << std::ifstream(out).rdbuf();
  e << std::ifstream(err).rdbuf();
  r.out = o.str();
  r.err = e.str();
  // Not fs::remove_all: the copy libtorch.so exports is the one this binary resolves, and it crashes.
  lowbit::recipes::remove_tree(dir.string());
  return r;
}

TEST(RecipeBinaries, HelpPrintsUsageAndEveryKey) {
  for (const std::string flag : {"--help", "-h"}) {
    const ProcessRun r = run(LOWBIT_TRAIN_BIN, flag);
    EXPECT_EQ(r.status, 0) << r.err;
    expect_has(r.out, "usage: lowbit-train [--config PATH|NAME]");
    for (const auto& k : recipe("pretrain").schema.keys()) expect_has(r.out, k.key + " (" + k.type.name() + ") = ");
  }
  const ProcessRun r = run(LOWBIT_LLAMA_FORWARD_BIN, "--help");
  EXPECT_EQ(r.status, 0) << r.err;
  expect_has(r.out, "usage: lowbit-llama-forward --config PATH|NAME [key.sub=value ...] WEIGHTS.safetensors");
  expect_has(r.out, "model.n_kv_heads (int) = ");
}

TEST(RecipeBinaries, BadValuesFailBeforeAnyOutputExists) {
  const fs::path out = fs::temp_directory_path() / "lowbit_schema_never_created";
  lowbit::recipes::remove_tree(out.string());
  for (const std::string bad : {"optim.name=sgd", "optim.lr=-1", "float8.recipe=bogus", "model.dim=90",
                                "train.device=gpu", "train.steps=0", "data.seq_len=0", "train.compile=true"}) {
    const ProcessRun r = run(LOWBIT_TRAIN_BIN, "train.output_dir=" + out.string() + " " + bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.out << r.err;
    const std::string key = bad.substr(0, bad.find('='));
    expect_has(r.err, "lowbit-train: ");
    expect_has(r.err, key);
    EXPECT_EQ(r.err.find("Exception raised from"), std::string::npos) << r.err;  // no C++ backtrace
    EXPECT_FALSE(fs::exists(out)) << bad;
  }
  ProcessRun r = run(LOWBIT_TRAIN_BIN, "--steps 3");
  EXPECT_EQ(r.status, 2);
  expect_has(r.err, "unknown option '--steps'");
  r = run(LOWBIT_LLAMA_FORWARD_BIN, "--config " + kConfigs + "/model/tiny.yaml model.dim=90 w t o");
  EXPECT_EQ(r.status, 2);
  expect_has(r.err, "model.dim (90) must be a multiple of model.n_heads (4)");
  r = run(LOWBIT_LLAMA_FORWARD_BIN, "--config " + kConfigs + "/model/tiny.yaml w");
  EXPECT_EQ(r.status, 2);
  expect_has(r.err, "missing TOKENS.safetensors");
}

}  // namespace
