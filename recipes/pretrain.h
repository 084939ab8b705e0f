// The pretraining recipe behind lowbit-train: a Llama on fortunes with float8 training or 2:4 sparse
// feed-forward weights (sparse.*, optionally dense after a fraction of the steps), AdamW /
// AdamW8bit / AdamW4bit, gradient clipping, warm-up + cosine, checkpoints with exact resume,
// validation perplexity and a one-line progress display; under torchrun with distributed.enabled,
// FSDP over the ranks (recipes/distributed_run.h). recipes/python/lowbit_recipes/pretrain_llama.py
// is the same recipe in Python.
//
// Outputs under train.output_dir: config.yaml (the resolved config), metrics.jsonl (one JSON
// object per logged step / evaluation), checkpoint/{model,optimizer}.safetensors (the step in the
// model file's metadata; parameter names as in the Python face, so Python loads C++ checkpoints).
#pragma once

#include <torch/optim/optimizer.h>

#include <lowbit/recipes/config.h>
#include <lowbit/recipes/llama.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::recipes {

// Learning rate at `step` (0-based): linear warm-up to lr over warmup_steps, then cosine decay
// to min_lr_ratio * lr at total_steps.
double lr_at(int64_t step, double lr, int64_t warmup_steps, int64_t total_steps, double min_lr_ratio);

// The values of optim.name: "adamw" (torch::optim::AdamW), "adamw8bit", "adamw4bit", "adamwfp8"
// (lowbit::optim, low-bit states). The recipe schema allows exactly these.
const std::vector<std::string>& optimizer_names();
// optim.name with optim.lr, betas, eps, weight_decay. Anything else is an error listing the choices.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& config, std::vector<at::Tensor> params);

// Checkpoint files in `dir`: model.safetensors (parameters; metadata "step") and
// optimizer.safetensors (lowbit optimizers) or optimizer.pt (torch's AdamW). Written to a
// temporary folder first and renamed, so a crash never leaves a half checkpoint.
void save_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer, int64_t step);
// Restores parameters and optimizer state; returns the step to continue from.
int64_t load_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer);
// Loads only the parameters of a checkpoint's model.safetensors (names must match exactly).
void load_model_weights(const std::string& path, Llama& model);

// Mean cross-entropy over the validation batches (perplexity = exp of it).
double evaluate(Llama& model, const std::vector<std::pair<at::Tensor, at::Tensor>>& batches);
// The same through `forward` (tokens on `device` -> logits), e.g. a sharded model's forward.
double evaluate(const std::vector<std::pair<at::Tensor, at::Tensor>>& batches, const at::Device& device,
                const std::function<at::Tensor(const at::Tensor&)>& forward);

struct PretrainResult {
  std::vector<double> losses;  // training loss of each step this run executed (this rank's batches)
  int64_t first_step = 0;      // the step this run started from (> 0 after a resume)
  double val_loss = 0.0;       // at the end
  std::string checkpoint_dir;
  int rank = 0;                // this process's rank (distributed.enabled), else 0
};

// Runs the recipe on a config loaded with the pretrain schema (recipe("pretrain").schema.load).
// `quiet` suppresses the progress display (tests).
PretrainResult pretrain(const Config& config, bool quiet = false);

}  // namespace lowbit::recipes
