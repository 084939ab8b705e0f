// The pretraining recipe. See pretrain.h.
#include <lowbit/recipes/pretrain.h>

#include <lowbit/float8/convert.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/optim/adamw_lowbit.h>
#include <lowbit/optim/state_file.h>
#include <lowbit/recipes/data.h>
#include <lowbit/recipes/distributed_run.h>
#include <lowbit/recipes/progress.h>
#include <lowbit/recipes/recipe.h>
#include <lowbit/recipes/remove_tree.h>
#include <lowbit/sparse/convert.h>

#include <ATen/ops/cross_entropy_loss.h>
#include <ATen/ops/stack.h>
#include <c10/util/Exception.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace lowbit::recipes {
namespace fs = std::filesystem;

double lr_at(int64_t step, double lr, int64_t warmup_steps, int64_t total_steps, double min_lr_ratio) {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = {"adamw", "adamw8bit", "adamw4bit", "adamwfp8"};
  return names;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& c, std::vector<at::Tensor> params) {
  const std::string name = c.get_string("optim.name");
  const double lr = c.get_float("optim.lr"), eps = c.get_float("optim.eps"), wd = c.get_float("optim.weight_decay");
  const YAML::Node betas_node = c.node("optim.betas");
  TORCH_CHECK(betas_node.IsSequence() && betas_node.size() == 2, "config key 'optim.betas': expected [beta1, beta2]");
  const auto betas = std::make_tuple(betas_node[0].as<double>(), betas_node[1].as<double>());
  if (name == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(lr).betas(betas).eps(eps).weight_decay(wd));
  }
  const auto low_bit = [&](optim::AdamWLowBitOptions options) {
    options.betas(betas).eps(eps).weight_decay(wd);
    return options;
  };
  if (name == "adamw8bit") return std::make_unique<optim::AdamW8bit>(params, low_bit(optim::AdamW8bitOptions(lr)));
  if (name == "adamw4bit") return std::make_unique<optim::AdamW4bit>(params, low_bit(optim::AdamW4bitOptions(lr)));
  if (name == "adamwfp8") return std::make_unique<optim::AdamWFp8>(params, low_bit(optim::AdamWFp8Options(lr)));
  std::string choices;
  for (const auto& n : optimizer_names()) choices += (choices.empty() ? "" : ", ") + n;
  TORCH_CHECK(false, "config key 'optim.name': unknown optimizer '", name, "'; choices: ", choices);
}

namespace {

std::map<std::string, at::Tensor> named_weights(Llama& model) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : model->named_parameters()) {
    if (item.value().defined()) out[item.key()] = item.value().detach();
  }
  return out;
}

}  // namespace

void save_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer, int64_t step) {
  const fs::path final_dir(dir);
  const fs::path tmp = final_dir.string() + ".tmp";
  remove_tree(tmp.string());
  fs::create_directories(tmp);
  io::save_safetensors((tmp / "model.safetensors").string(), named_weights(model),
                       {{"format", "lowbit.recipes.llama/1"}, {"step", std::to_string(step)}});
  if (auto* lowbit_opt = dynamic_cast<optim::AdamWLowBit*>(&optimizer)) {
    optim::save_state(*lowbit_opt, (tmp / "optimizer.safetensors").string());
  } else {
    torch::save(optimizer, (tmp / "optimizer.pt").string());
  }
  remove_tree(final_dir.string());
  fs::rename(tmp, final_dir);
}

void load_model_weights(const std::string& path, Llama& model) {
  const io::SafetensorsContents contents = io::load_safetensors(path);
  auto params = named_weights(model);
  for (const auto& [name, p] : params) {
    auto it = contents.tensors.find(name);
    TORCH_CHECK(it != contents.tensors.end(), "checkpoint ", path, " has no tensor '", name, "'");
    TORCH_CHECK(it->second.sizes() == p.sizes(), "checkpoint ", path, ": '", name, "' has shape ", it->second.sizes(),
                ", the model expects ", p.sizes());
  }
  TORCH_CHECK(contents.tensors.size() == params.size(), "checkpoint ", path, " has ", contents.tensors.size(),
              " tensors, the model ", params.size(), " parameters (a different model config?)");
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : params) p.copy_(contents.tensors.at(name));
}

int64_t load_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer) {
  const std::string model_path = (fs::path(dir) / "model.safetensors").string();
  load_model_weights(model_path, model);
  const auto metadata = io::load_safetensors(model_path).metadata;
  auto step = metadata.find("step");
  TORCH_CHECK(step != metadata.end(), "checkpoint ", model_path, " has no 'step' in its metadata");
  if (auto* lowbit_opt = dynamic_cast<optim::AdamWLowBit*>(&optimizer)) {
    optim::load_state(*lowbit_opt, (fs::path(dir) / "optimizer.safetensors").string());
  } else {
    const fs::path path = fs::path(dir) / "optimizer.pt";
    TORCH_CHECK(fs::exists(path), "checkpoint ", dir, " has no optimizer.pt (was it saved with another optim.name?)");
    torch::load(optimizer, path.string());
  }
  return std::stoll(step->second);
}

double evaluate(Llama& model, const std::vector<std::pair<at::Tensor, at::Tensor>>& batches) {
  return evaluate(batches, model->output->weight.device(), [&](const at::Tensor& x) { return model->forward(x); });
}

double evaluate(const std::vector<std::pair<at::Tensor, at::Tensor>>& batches, const at::Device& device,
                const std::function<at::Tensor(const at::Tensor&)>& forward) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> losses;
  for (const auto& [x, y] : batches) {
    const at::Tensor logits = forward(x.to(device));
    losses.push_back(at::cross_entropy_loss(logits.flatten(0, 1), y.to(device).flatten()));
  }
  return at::stack(losses).mean().item<double>();
}

PretrainResult pretrain(const Config& c, bool quiet) {
  recipe("pretrain").schema.validate(c);  // every mistake before any work (a no-op after schema.load)
  if (c.get_bool("train.compile")) {
    throw ConfigError("config key 'train.compile' (" + c.origin("train.compile") +
                      "): torch.compile exists in the Python recipe only (python -m lowbit_recipes.pretrain_llama); "
                      "allowed in C++: false");
  }
  DistributedRun dist(c);  // rank 0 of 1 unless distributed.enabled
  quiet = quiet || !dist.is_main();
  const int64_t steps = c.get_int("train.steps"), seed = c.get_int("train.seed");
  const int64_t stop_at = c.get_int("train.stop_at");
  const std::string out_dir = c.get_string("train.output_dir");
  const at::Device device = dist.device(c.get_string("train.device"));
  const int64_t batch_size = c.get_int("data.batch_size"), seq_len = c.get_int("data.seq_len");
  const double lr = c.get_float("optim.lr"), grad_clip = c.get_float("train.grad_clip");
  const int64_t warmup = c.get_int("train.warmup_steps"), log_every = c.get_int("train.log_every");
  const int64_t eval_every = c.get_int("train.eval_every"), ckpt_every = c.get_int("train.checkpoint_every");
  const double min_lr_ratio = c.get_float("train.min_lr_ratio");

  if (dist.is_main()) {
    fs::create_directories(out_dir);
    std::ofstream(fs::path(out_dir) / "config.yaml") << c.dump();
  }
  if (!quiet) std::cout << "# resolved config\n" << c.dump() << std::flush;

  const TextSplit split = split_fortunes(load_fortunes(c.get_string("data.fortunes_dir")), c.get_int("data.val_every"));
  const auto val = val_batches(split.val, batch_size, seq_len, c.get_int("train.eval_batches"));

  torch::manual_seed(static_cast<uint64_t>(seed));  // every rank builds the same model
  Llama model(LlamaConfig::from_config(c));
  model->to(device);
  if (c.get_bool("float8.enabled")) {
    float8::Float8LinearConfig f8 = float8::Float8LinearConfig::from_recipe_name(c.get_string("float8.recipe"));
    f8.emulate = c.get_bool("float8.emulate");
    f8.enable_fsdp_float8_all_gather = dist.float8_all_gather();
    const auto summary = float8::convert_to_float8_training(*model, f8);
    if (!quiet) std::cout << "# float8: " << summary.converted.size() << " linears converted\n";
  }
  dist.shard(model);  // before the optimizer: it must see the shards
  auto optimizer = make_optimizer(c, model->parameters());
  if (!quiet && dist.enabled()) {
    std::cout << "# distributed: " << dist.world_size() << " ranks, "
              << (c.get_bool("distributed.shard") ? "FSDP per block" : "data parallel")
              << (dist.float8_all_gather() ? ", float8 all-gather" : "") << "\n";
  }

  PretrainResult result;
  result.checkpoint_dir = (fs::path(out_dir) / "checkpoint").string();
  int64_t step = 0;
  if (c.get_bool("train.resume") && fs::exists(fs::path(result.checkpoint_dir) / "model.safetensors")) {
    if (dist.enabled()) {
      TORCH_CHECK(DistributedRun::is_sharded_checkpoint(result.checkpoint_dir), "train.resume: checkpoint ",
                  result.checkpoint_dir, " comes from a single-process run; a distributed run resumes from the "
                  "checkpoint of a distributed run with the same world size");
      step = dist.load_checkpoint(result.checkpoint_dir, model, *optimizer);
    } else {
      TORCH_CHECK(!DistributedRun::is_sharded_checkpoint(result.checkpoint_dir), "train.resume: checkpoint ",
                  result.checkpoint_dir, " comes from a distributed run; resume it under torchrun with "
                  "distributed.enabled=true and the same number of ranks");
      step = load_checkpoint(result.checkpoint_dir, model, *optimizer);
    }
    if (!quiet) std::cout << "# resumed from " << result.checkpoint_dir << " at step " << step << "\n";
  }
  result.first_step = step;
  // 2:4 sparse feed-forward weights until `dense_at`, then dense from the weights sparse.dense_init
  // names (pruned: W*M, the same function across the switch; master: W as it is). The
  // checkpoint holds the dense master weights, so a resumed run converts up to the switch itself
  // (resuming at step dense_at still prunes there, as the uninterrupted run does).
  const bool sparse = c.get_bool("sparse.enabled");
  const int64_t dense_at = sparse ? sparse::dense_after_step(steps, c.get_float("sparse.dense_after_fraction")) : 0;
  if (sparse && step <= dense_at) {
    sparse::SemiSparseTrainingConfig sc;
    sc.gradient = core::parse_semi_sparse_gradient(c.get_string("sparse.gradient"));
    const auto summary = sparse::convert_to_semi_sparse_training(
        *model, sc, [](const std::string& name, const nn::LinearImpl&) { return name.find(".feed_forward.") != std::string::npos; });
    TORCH_CHECK(!summary.converted.empty(), "sparse.enabled: no feed-forward linear could be made 2:4:\n",
                summary.to_string());
    if (!quiet) std::cout << "# sparse: " << summary.converted.size() << " feed-forward linears train 2:4\n";
  }
  std::ofstream metrics;
  if (dist.is_main()) {
    metrics.open(fs::path(out_dir) / "metrics.jsonl", step > 0 ? std::ios::app : std::ios::trunc);
    metrics << std::setprecision(10);
  }
  const auto forward = [&](const at::Tensor& x) { return dist.forward(model, x); };
  Progress progress(steps, quiet);
  const int64_t last = stop_at > 0 ? std::min(stop_at, steps) : steps;
  std::vector<at::Tensor> losses;
  model->train();
  for (; step < last; ++step) {
    if (sparse && step == dense_at && step < steps) {
      const bool pruned = c.get_string("sparse.dense_init") == "pruned";
      const auto summary = sparse::swap_semi_sparse_linear_with_linear(*model, /*prune_weights=*/pruned);
      progress.message("step " + std::to_string(step) + ": " + std::to_string(summary.converted.size()) +
                       " feed-forward linears train dense from here, starting from their " +
                       (pruned ? "pruned" : "dense master") + " weights");
    }
    const double step_lr = lr_at(step, lr, warmup, steps, min_lr_ratio);
    for (auto& group : optimizer->param_groups()) group.options().set_lr(step_lr);
    // Rank r takes batch step * world_size + r of the stream: with one rank, the single-process run.
    auto [x, y] = train_batch(split.train, batch_size, seq_len, seed, step * dist.world_size() + dist.rank());
    const at::Tensor logits = forward(x.to(device));
    const at::Tensor loss = at::cross_entropy_loss(logits.flatten(0, 1), y.to(device).flatten());
    optimizer->zero_grad();
    loss.backward();
    if (grad_clip > 0) dist.clip_grad_norm(model, grad_clip);
    optimizer->step();
    dist.after_optimizer_step();
    losses.push_back(loss.detach());
    progress.add_tokens(batch_size * seq_len * dist.world_size());
    if ((step + 1) % log_every == 0 || step + 1 == last) {
      const double value = dist.mean(loss.item<double>());  // the mean over the ranks' batches
      progress.update(step + 1, value, step_lr);
      if (dist.is_main()) {
        metrics << "{\"step\": " << step + 1 << ", \"loss\": " << value << ", \"lr\": " << step_lr << "}\n";
      }
    }
    if ((eval_every > 0 && (step + 1) % eval_every == 0) || step + 1 == last) {
      model->eval();
      result.val_loss = evaluate(val, device, forward);  // every rank, the same batches
      model->train();
      progress.message("step " + std::to_string(step + 1) + ": val loss " + std::to_string(result.val_loss) +
                       ", perplexity " + std::to_string(std::exp(result.val_loss)));
      if (dist.is_main()) {
        metrics << "{\"step\": " << step + 1 << ", \"val_loss\": " << result.val_loss
                << ", \"val_perplexity\": " << std::exp(result.val_loss) << "}\n";
      }
    }
    if ((ckpt_every > 0 && (step + 1) % ckpt_every == 0) || step + 1 == last) {
      if (dist.enabled()) {
        dist.save_checkpoint(result.checkpoint_dir, model, *optimizer, step + 1);
      } else {
        save_checkpoint(result.checkpoint_dir, model, *optimizer, step + 1);
      }
    }
    if (dist.is_main()) metrics.flush();
  }
  progress.finish();
  for (const auto& l : losses) result.losses.push_back(l.item<double>());
  result.rank = dist.rank();
  return result;
}

}  // namespace lowbit::recipes
