// lowbit-train: pretrain a Llama from a recipe config (see recipes/pretrain.h).
//
//   lowbit-train --config recipes/configs/pretrain_tiny.yaml train.steps=50 optim.name=adamw4bit
#include <lowbit/recipes/config.h>
#include <lowbit/recipes/pretrain.h>

#include <c10/util/Exception.h>

#include <cmath>
#include <iostream>

int main(int argc, char** argv) {
  using namespace lowbit::recipes;
  try {
    const CommandLine cl = parse_command_line(argc, argv, "recipes/configs/pretrain_tiny.yaml");
    const Config config = load_config(cl.config_path, cl.overrides);
    const PretrainResult result = pretrain(config);
    std::cout << "done: " << result.losses.size() << " steps from step " << result.first_step
              << ", final val loss " << result.val_loss << " (perplexity " << std::exp(result.val_loss)
              << "), checkpoint " << result.checkpoint_dir << "\n";
    return 0;
  } catch (const ConfigError& e) {
    std::cerr << "lowbit-train: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "lowbit-train: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}
