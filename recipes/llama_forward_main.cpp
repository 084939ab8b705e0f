// lowbit-llama-forward: logits of the C++ Llama for given weights and tokens, for the parity test
// between the two faces (tests/python/test_llama.py) and for inspecting checkpoints.
//
//   lowbit-llama-forward --config model.yaml [model.key=value ...] WEIGHTS.safetensors TOKENS.safetensors OUT.safetensors
// reads tensor "tokens" (int64, batch x seq), writes tensor "logits" (float32).
#include <lowbit/io/safetensors.h>
#include <lowbit/recipes/llama.h>
#include <lowbit/recipes/pretrain.h>
#include <lowbit/recipes/recipe.h>

#include <c10/util/Exception.h>
#include <torch/utils.h>

int main(int argc, char** argv) {
  using namespace lowbit::recipes;
  return recipe_main("llama_forward", argc, argv, [](const Config& config, const CommandLine& cl) {
    Llama model(LlamaConfig::from_config(config));
    load_model_weights(cl.positionals[0], model);
    const auto tokens_file = lowbit::io::load_safetensors(cl.positionals[1]);
    auto tokens = tokens_file.tensors.find("tokens");
    TORCH_CHECK(tokens != tokens_file.tensors.end(), cl.positionals[1], " has no tensor 'tokens'");
    torch::NoGradGuard no_grad;
    model->eval();
    lowbit::io::save_safetensors(cl.positionals[2], {{"logits", model->forward(tokens->second)}});
    return 0;
  });
}
