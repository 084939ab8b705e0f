// The recipes, their command line and help. See recipe.h.
#include <lowbit/recipes/recipe.h>

#include <lowbit/recipes/keys.h>
#include <lowbit/sparse/convert.h>
#include <lowbit/recipes/llama.h>

#include <c10/util/Exception.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#ifndef LOWBIT_RECIPES_SOURCE_DIR
#define LOWBIT_RECIPES_SOURCE_DIR ""
#endif

namespace lowbit::recipes {
namespace {

namespace fs = std::filesystem;

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string model_text(const Config& c) {
  const LlamaConfig m = LlamaConfig::from_config(c);
  std::ostringstream s;
  s << "a Llama of " << fmt(static_cast<double>(m.num_parameters()) / 1e6) << "M parameters (" << m.n_layers
    << " layers, dim " << m.dim << ", " << m.n_heads << " heads, " << m.n_kv_heads << " kv heads)";
  return s.str();
}

std::string schedule_text(const Config& c) {
  std::ostringstream s;
  s << c.get_int("train.steps") << " steps of " << c.get_int("data.batch_size") << " x " << c.get_int("data.seq_len")
    << " tokens on " << c.get_string("train.device") << ", " << c.get_string("optim.name") << " (lr "
    << fmt(c.get_float("optim.lr")) << ", " << c.get_int("train.warmup_steps") << " warm-up steps, then cosine)";
  return s.str();
}

std::string pretrain_plan(const Config& c) {
  std::ostringstream s;
  s << "pretrain " << model_text(c) << " on Debian's fortunes (byte tokens): " << schedule_text(c) << ", ";
  if (c.get_bool("float8.enabled")) {
    s << "float8 " << c.get_string("float8.recipe") << (c.get_bool("float8.emulate") ? " (emulated)" : "");
  } else {
    s << "no float8";
  }
  if (c.get_bool("distributed.enabled")) {
    s << "; on torchrun's ranks, " << (c.get_bool("distributed.shard") ? "FSDP per block" : "data parallel")
      << (c.get_bool("distributed.float8_all_gather") ? " with float8 all-gather" : "") << " ("
      << c.get_string("distributed.backend") << ")";
  }
  if (c.get_bool("sparse.enabled")) {
    const double frac = c.get_float("sparse.dense_after_fraction");
    s << ", 2:4 sparse feed-forward weights (" << c.get_string("sparse.gradient") << ")";
    if (frac < 1) {
      s << " until step " << sparse::dense_after_step(c.get_int("train.steps"), frac) << ", then dense from the "
        << (c.get_string("sparse.dense_init") == "pruned" ? "pruned" : "dense master") << " weights";
    }
  }
  s << "; config.yaml, metrics.jsonl and checkpoint/ go to " << c.get_string("train.output_dir");
  if (c.get_bool("train.resume")) s << " (resuming from its checkpoint when there is one)";
  return s.str();
}

std::string finetune_plan(const Config& c) {
  std::ostringstream s;
  const std::string mode = c.get_string("finetune.mode");
  s << "load " << c.get_string("finetune.checkpoint") << " (" << model_text(c) << "), ";
  if (mode == "none") {
    s << "no fine-tuning";
  } else {
    s << "fine-tune " << (mode == "qat" ? "with QAT (" + c.get_string("finetune.qat_scheme") + ")" : "in float32")
      << " for " << schedule_text(c);
  }
  s << "; then one table row per format (";
  const auto configs = c.get_string_list("quantize.configs");
  for (std::size_t i = 0; i < configs.size(); ++i) s << (i ? ", " : "") << configs[i];
  s << "): perplexity, weight SQNR, tokens/s, memory, size; results and plots go to "
    << c.get_string("train.output_dir");
  return s.str();
}

std::map<std::string, Recipe> make_recipes() {
  std::map<std::string, Recipe> out;
  Recipe pretrain{"pretrain",
                  "Pretrain a Llama on Debian's fortunes: float8 training (emulated on CPUs), AdamW with float32 or "
                  "low-bit states, warm-up + cosine, checkpoints with exact resume, validation perplexity.",
                  "pretrain_tiny",
                  {},
                  Schema(),
                  pretrain_plan};
  pretrain.schema.include(model_keys()).include(optim_keys()).include(float8_keys()).include(sparse_keys());
  pretrain.schema.include(data_keys()).include(train_keys()).include(distributed_keys());
  out.emplace(pretrain.name, pretrain);

  Recipe finetune{"finetune_then_quantize",
                  "Fine-tune a pretrained Llama (plain or QAT), quantize it to each of a list of formats and compare "
                  "them in a table (perplexity, weight SQNR, tokens/s, memory bandwidth, memory, size) with plots.",
                  "finetune_quantize_tiny",
                  {},
                  Schema(),
                  finetune_plan};
  finetune.schema.include(model_keys()).include(optim_keys()).include(data_keys()).include(train_keys());
  finetune.schema.include(finetune_keys()).include(quantize_keys());
  out.emplace(finetune.name, finetune);

  Recipe forward{"llama_forward",
                 "Logits of the C++ Llama for given weights and tokens: reads tensor 'tokens' (int64, batch x seq) "
                 "from TOKENS, writes tensor 'logits' (float32) to OUT. The config needs the model.* keys "
                 "(a training run's config.yaml will do).",
                 "",
                 {"WEIGHTS.safetensors", "TOKENS.safetensors", "OUT.safetensors"},
                 Schema(),
                 nullptr};
  forward.schema.include(model_keys()).allow_other_sections();
  out.emplace(forward.name, forward);
  return out;
}

const std::map<std::string, Recipe>& recipes() {
  static const std::map<std::string, Recipe> all = make_recipes();
  return all;
}

}  // namespace

const Recipe& recipe(const std::string& name) {
  auto it = recipes().find(name);
  if (it == recipes().end()) {
    std::string names;
    for (const auto& n : recipe_names()) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("unknown recipe '" + name + "'; recipes: " + names);
  }
  return it->second;
}

std::vector<std::string> recipe_names() {
  std::vector<std::string> out;
  for (const auto& [name, r] : recipes()) out.push_back(name);
  return out;
}

std::string usage(const Recipe& r, const std::string& prog) {
  std::string u = "usage: " + prog + (r.default_config.empty() ? " --config PATH|NAME" : " [--config PATH|NAME]") +
                  " [key.sub=value ...]";
  for (const auto& p : r.positionals) u += " " + p;
  return u + "   (-h, --help: every config key)";
}

CommandLine parse_command_line(const Recipe& r, const std::vector<std::string>& args, const std::string& prog) {
  CommandLine out;
  out.config = r.default_config;
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") {
      out.help = true;
      return out;
    }
  }
  const std::string use = usage(r, prog);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--config") {
      if (i + 1 >= args.size()) throw ConfigError("--config needs a path or a config name\n" + use);
      out.config = args[++i];
      out.config_given = true;
    } else if (a.rfind("--config=", 0) == 0) {
      out.config = a.substr(9);
      out.config_given = true;
    } else if (a.rfind("-", 0) == 0) {
      throw ConfigError("unknown option '" + a + "'; options are --config and -h/--help, settings are key.sub=value\n" +
                        use);
    } else if (a.find('=') != std::string::npos) {
      out.overrides.push_back(a);
    } else if (out.positionals.size() < r.positionals.size()) {
      out.positionals.push_back(a);
    } else {
      throw ConfigError("unexpected argument '" + a + "' (settings are key.sub=value)\n" + use);
    }
  }
  if (out.positionals.size() < r.positionals.size()) {
    throw ConfigError("missing " + r.positionals[out.positionals.size()] + "\n" + use);
  }
  if (out.config.empty()) throw ConfigError("no config given (--config PATH)\n" + use);
  return out;
}

std::string resolve_config(const std::string& config, const std::vector<std::string>& config_dirs) {
  if (fs::is_regular_file(config)) return config;
  const fs::path p(config);
  std::string tried = config;
  if (!p.has_parent_path()) {
    const std::string file = p.extension() == ".yaml" || p.extension() == ".yml" ? config : config + ".yaml";
    for (const auto& dir : config_dirs) {
      const fs::path candidate = fs::path(dir) / file;
      if (fs::is_regular_file(candidate)) return candidate.lexically_normal().string();
      tried += ", " + candidate.lexically_normal().string();
    }
  }
  throw ConfigError("config file not found: " + config + " (tried " + tried + ")");
}

std::vector<std::string> default_config_dirs(const std::string& argv0) {
  std::vector<std::string> dirs;
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  const fs::path base = ec ? fs::path(argv0).parent_path() : exe.parent_path();
  dirs.push_back((base / ".." / "configs").lexically_normal().string());
  dirs.push_back("recipes/configs");
  if (std::string(LOWBIT_RECIPES_SOURCE_DIR).size()) dirs.push_back(std::string(LOWBIT_RECIPES_SOURCE_DIR) + "/configs");
  return dirs;
}

std::string help_text(const Recipe& r, const std::string& prog, const CommandLine& cl,
                      const std::vector<std::string>& config_dirs) {
  std::ostringstream out;
  out << usage(r, prog) << "\n\n" << r.summary << "\n\n";
  out << "  --config PATH|NAME   a YAML config (a bare NAME is looked up in the shipped configs";
  if (!r.default_config.empty()) out << "; default: " << r.default_config;
  out << ")\n  key.sub=value        set one config key (type-checked; lists as [a, b])\n";
  out << "  -h, --help           this text\n";
  std::string where = "the declared defaults";
  std::string root;
  Config values;
  bool loaded = false;
  if (!cl.config.empty()) {
    try {
      const std::string path = resolve_config(cl.config, config_dirs);
      values = load_config_onto(r.schema.defaults(), path, cl.overrides, true);
      where = path + (cl.overrides.empty() ? "" : " with the overrides");
      root = fs::path(path).parent_path().string();
      loaded = true;
    } catch (const ConfigError& e) {
      where = std::string("the declared defaults (the config did not load: ") + e.what() + ")";
    }
  }
  out << "\nConfig keys, with the values of " << where << " [where set]:\n";
  out << r.schema.describe_keys(loaded ? &values : nullptr, root);
  return out.str();
}

std::string plan_text(const Recipe& r, const Config& config, const std::string& config_path, const CommandLine& cl) {
  if (!r.plan) return "";
  std::string s = r.name + ": " + r.plan(config) + ".\n  config: " + config_path;
  if (!cl.config_given) s += " (the default; --config picks another)";
  if (!cl.overrides.empty()) {
    s += ", overrides:";
    for (const auto& o : cl.overrides) s += " " + o;
  }
  return s + "; --help lists every key";
}

int recipe_main(const std::string& recipe_name, int argc, char** argv,
                const std::function<int(const Config&, const CommandLine&)>& body) {
  const std::string prog = fs::path(argc > 0 ? argv[0] : recipe_name).filename().string();
  const std::vector<std::string> dirs = default_config_dirs(argc > 0 ? argv[0] : "");
  try {
    const Recipe& r = recipe(recipe_name);
    const CommandLine cl = parse_command_line(r, std::vector<std::string>(argv + 1, argv + argc), prog);
    if (cl.help) {
      std::cout << help_text(r, prog, cl, dirs);
      return 0;
    }
    const std::string path = resolve_config(cl.config, dirs);
    const Config config = r.schema.load(path, cl.overrides);
    const std::string plan = plan_text(r, config, path, cl);
    const char* rank = std::getenv("RANK");  // under torchrun, rank 0 speaks for the run
    if (!plan.empty() && (rank == nullptr || std::string(rank) == "0")) std::cout << plan << "\n" << std::flush;
    return body(config, cl);
  } catch (const ConfigError& e) {
    std::cerr << prog << ": " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << prog << ": " << e.what_without_backtrace() << "\n";
    return 1;
  }
}

}  // namespace lowbit::recipes
