// lowbit-train: pretrain a Llama from a recipe config (see recipes/pretrain.h).
//
//   lowbit-train --config recipes/configs/pretrain_tiny.yaml train.steps=50 optim.name=adamw4bit
//   lowbit-train --help      # usage and every config key with its type, default and allowed values
#include <lowbit/recipes/pretrain.h>
#include <lowbit/recipes/recipe.h>

#include <cmath>
#include <iostream>

int main(int argc, char** argv) {
  using namespace lowbit::recipes;
  return recipe_main("pretrain", argc, argv, [](const Config& config, const CommandLine&) {
    const PretrainResult result = pretrain(config);
    std::cout << "done: " << result.losses.size() << " steps from step " << result.first_step
              << ", final val loss " << result.val_loss << " (perplexity " << std::exp(result.val_loss) << ")\n"
              << "outputs: " << config.get_string("train.output_dir")
              << "/{config.yaml, metrics.jsonl}, checkpoint " << result.checkpoint_dir << "\n";
    return 0;
  });
}
