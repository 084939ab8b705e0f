// lowbit-llama-forward: logits of the C++ Llama for given weights and tokens, for the parity test
// between the two faces (tests/python/test_llama_parity.py) and for inspecting checkpoints.
//
//   lowbit-llama-forward --config model.yaml WEIGHTS.safetensors TOKENS.safetensors OUT.safetensors
// reads tensor "tokens" (int64, batch x seq), writes tensor "logits" (float32).
#include <lowbit/io/safetensors.h>
#include <lowbit/recipes/config.h>
#include <lowbit/recipes/llama.h>
#include <lowbit/recipes/pretrain.h>

#include <c10/util/Exception.h>
#include <torch/utils.h>

#include <iostream>

int main(int argc, char** argv) {
  using namespace lowbit::recipes;
  try {
    if (argc != 6 || std::string(argv[1]) != "--config") {
      std::cerr << "usage: " << argv[0] << " --config CONFIG.yaml WEIGHTS.safetensors TOKENS.safetensors OUT.safetensors\n";
      return 2;
    }
    const Config config = load_config(argv[2]);
    Llama model(LlamaConfig::from_config(config));
    load_model_weights(argv[3], model);
    const at::Tensor tokens = lowbit::io::load_safetensors(argv[4]).tensors.at("tokens");
    torch::NoGradGuard no_grad;
    model->eval();
    lowbit::io::save_safetensors(argv[5], {{"logits", model->forward(tokens)}});
    return 0;
  } catch (const ConfigError& e) {
    std::cerr << "lowbit-llama-forward: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "lowbit-llama-forward: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}
