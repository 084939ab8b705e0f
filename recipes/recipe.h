// The recipes and their command line, shared by both faces: what each recipe accepts (its schema),
// its default config, the one-line plan it prints before working, the command-line parser and
// the --help text. C++ mains call recipe_main; the Python recipes call the same functions through
// lowbit_recipes._C (lowbit_recipes/cli.py), so both faces accept and reject the same things.
//
//   lowbit-train [--config PATH|NAME] [key.sub=value ...]      (-h / --help: usage and every key)
#pragma once

#include <lowbit/recipes/schema.h>

#include <functional>
#include <string>
#include <vector>

namespace lowbit::recipes {

struct Recipe {
  std::string name;                      // "pretrain", "finetune_then_quantize", "llama_forward"
  std::string summary;                   // what it does, for --help
  std::string default_config;            // a config name looked up in the config folders ("" = required)
  std::vector<std::string> positionals;  // required file arguments after the options, for usage
  Schema schema;
  // What a run of this config is about to do, one paragraph (empty: print nothing).
  std::function<std::string(const Config&)> plan;
};

// The registered recipes by name; an unknown name is a ConfigError listing them.
const Recipe& recipe(const std::string& name);
std::vector<std::string> recipe_names();

// A parsed command line: `--config PATH|NAME` (or `--config=...`), `key.sub=value` overrides,
// the recipe's positional files, and `-h` / `--help`.
struct CommandLine {
  std::string config;        // as given, or the recipe's default_config
  bool config_given = false;
  std::vector<std::string> overrides;
  std::vector<std::string> positionals;
  bool help = false;
};
// `args` excludes the program name. Unknown flags, a missing --config value or a wrong number of
// positional arguments are ConfigErrors that end with the usage line. With --help nothing else
// is checked.
CommandLine parse_command_line(const Recipe& recipe, const std::vector<std::string>& args, const std::string& prog);
std::string usage(const Recipe& recipe, const std::string& prog);

// The config file a --config value names: the path itself when it exists, else (for a bare name,
// ".yaml" optional) the first folder of `config_dirs` that has it. A ConfigError names what was tried.
std::string resolve_config(const std::string& config, const std::vector<std::string>& config_dirs);
// The shipped config folders a C++ recipe searches: <exe>/../configs (the wheel),
// ./recipes/configs (a checkout) and the source tree's recipes/configs.
std::vector<std::string> default_config_dirs(const std::string& argv0);

// Usage, summary, the config the values come from, and every key (type, value, allowed, help).
std::string help_text(const Recipe& recipe, const std::string& prog, const CommandLine& cl,
                      const std::vector<std::string>& config_dirs);
// The plan line printed before any work: the recipe's plan plus where the config came from.
std::string plan_text(const Recipe& recipe, const Config& config, const std::string& config_path,
                      const CommandLine& cl);

// The main of a C++ recipe: parses argv; --help prints help_text (exit 0); loads the config with
// the recipe's schema (every mistake: "<prog>: <message>" on stderr, exit 2, before anything is
// created); prints plan_text; returns `body`'s exit code (c10::Error from it: message, exit 1).
int recipe_main(const std::string& recipe_name, int argc, char** argv,
                const std::function<int(const Config&, const CommandLine&)>& body);

}  // namespace lowbit::recipes
