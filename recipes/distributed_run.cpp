// The distributed side of lowbit-train. See distributed_run.h.
#include <lowbit/recipes/distributed_run.h>

#include <lowbit/build_config.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/optim/adamw_lowbit.h>
#include <lowbit/optim/state_file.h>
#include <lowbit/recipes/remove_tree.h>

#if LOWBIT_WITH_DISTRIBUTED
#include <lowbit/distributed/fully_shard.h>
#include <lowbit/distributed/process_group.h>
#endif

#include <ATen/ops/tensor.h>
#include <c10/util/Exception.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/serialize.h>

#include <filesystem>
#include <map>
#include <optional>
#include <vector>

namespace lowbit::recipes {
namespace fs = std::filesystem;

#if LOWBIT_WITH_DISTRIBUTED

struct DistributedRun::State {
  std::optional<distributed::ProcessGroup> group;
  distributed::FullyShardOptions options;
  std::vector<std::shared_ptr<distributed::FullyShardedModule>> blocks;
  std::shared_ptr<distributed::FullyShardedModule> root;
};

DistributedRun::DistributedRun(const Config& c) : state_(std::make_unique<State>()) {
  enabled_ = c.get_bool("distributed.enabled");
  if (!enabled_) return;
  distributed::ProcessGroupOptions o;
  o.backend = c.get_string("distributed.backend");
  o.timeout = std::chrono::seconds(c.get_int("distributed.timeout_s"));
  state_->group.emplace(distributed::init_process_group(o));
  state_->options.shard = c.get_bool("distributed.shard");
  state_->options.reshard_after_forward = c.get_bool("distributed.reshard_after_forward");
  float8_all_gather_ = c.get_bool("distributed.float8_all_gather");
  rank_ = state_->group->rank();
  world_size_ = state_->group->world_size();
  local_rank_ = state_->group->local_rank();
}

void DistributedRun::shard(Llama& model) {
  if (!enabled_) return;
  auto& s = *state_;
  for (size_t i = 0; i < model->layers->size(); ++i) {
    s.blocks.push_back(distributed::fully_shard(*model->layers->ptr(i), *s.group, s.options));
  }
  s.root = distributed::fully_shard(*model, *s.group, s.options);
  auto blocks = s.blocks;  // the model keeps the units alive through its runner
  model->block_runner = [blocks](size_t i, const std::function<at::Tensor()>& fn) { return blocks[i]->forward(fn); };
}

at::Tensor DistributedRun::forward(Llama& model, const at::Tensor& tokens) {
  if (!state_->root) return model->forward(tokens);
  return state_->root->forward([&] { return model->forward(tokens); });
}

void DistributedRun::clip_grad_norm(Llama& model, double max_norm) {
  if (state_->root) {
    distributed::clip_grad_norm_(*state_->root, max_norm);
  } else {
    torch::nn::utils::clip_grad_norm_(model->parameters(), max_norm);
  }
}

void DistributedRun::after_optimizer_step() {
  if (state_->root && float8_all_gather_) distributed::precompute_float8_dynamic_scale(*state_->root);
}

double DistributedRun::mean(double value) {
  if (!enabled_) return value;
  at::Tensor t = at::tensor({value}, at::kDouble).to(device_);  // NCCL-only groups carry CUDA tensors only
  state_->group->all_reduce(t, c10d::ReduceOp::SUM);
  return t.item<double>() / world_size_;
}

void DistributedRun::barrier() {
  if (enabled_) state_->group->barrier();
}

#else  // a build without lowbit::distributed: single-process runs only

struct DistributedRun::State {};

DistributedRun::DistributedRun(const Config& c) : state_(std::make_unique<State>()) {
  TORCH_CHECK(!c.get_bool("distributed.enabled"), "distributed.enabled=true: this lowbit was built without "
              "lowbit::distributed (LOWBIT_DISTRIBUTED=OFF, or the torch wheel has no c10d headers)");
}
void DistributedRun::shard(Llama&) {}
at::Tensor DistributedRun::forward(Llama& model, const at::Tensor& tokens) { return model->forward(tokens); }
void DistributedRun::clip_grad_norm(Llama& model, double max_norm) {
  torch::nn::utils::clip_grad_norm_(model->parameters(), max_norm);
}
void DistributedRun::after_optimizer_step() {}
double DistributedRun::mean(double value) { return value; }
void DistributedRun::barrier() {}

#endif

DistributedRun::~DistributedRun() = default;

at::Device DistributedRun::device(const std::string& train_device) const {
  const at::Device d(train_device);
  device_ = enabled_ && d.is_cuda() ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank_)) : d;
  return device_;
}

bool DistributedRun::is_sharded_checkpoint(const std::string& dir) { return fs::is_directory(fs::path(dir) / "shards"); }

namespace {

std::string rank_file(const fs::path& dir, const std::string& stem, int rank, const std::string& ext) {
  return (dir / "shards" / (stem + ".rank" + std::to_string(rank) + ext)).string();
}

}  // namespace

void DistributedRun::save_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer,
                                     int64_t step) {
  const fs::path final_dir(dir), tmp(dir + ".tmp");
  const std::map<std::string, std::string> meta{{"format", "lowbit.recipes.llama/1"},
                                                {"step", std::to_string(step)},
                                                {"world_size", std::to_string(world_size_)}};
  if (is_main()) {
    remove_tree(tmp.string());
    fs::create_directories(tmp / "shards");
  }
  barrier();
#if LOWBIT_WITH_DISTRIBUTED
  // The full model, for every tool that reads model.safetensors (fine-tuning, forward parity).
  if (state_->root) distributed::save_full_state_dict(*state_->root, (tmp / "model.safetensors").string(), meta);
#endif
  std::map<std::string, at::Tensor> shard;
  for (const auto& item : model->named_parameters()) shard[item.key()] = item.value().detach();
  io::save_safetensors(rank_file(tmp, "model", rank_, ".safetensors"), shard, meta);
  if (auto* lowbit_opt = dynamic_cast<optim::AdamWLowBit*>(&optimizer)) {
    optim::save_state(*lowbit_opt, rank_file(tmp, "optimizer", rank_, ".safetensors"));
  } else {
    torch::save(optimizer, rank_file(tmp, "optimizer", rank_, ".pt"));
  }
  barrier();
  if (is_main()) {
    remove_tree(final_dir.string());
    fs::rename(tmp, final_dir);
  }
  barrier();
}

int64_t DistributedRun::load_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer) {
  const fs::path d(dir);
  const std::string model_path = rank_file(d, "model", rank_, ".safetensors");
  TORCH_CHECK(fs::exists(model_path), "checkpoint ", dir, " has no ", model_path,
              " (saved with fewer ranks? resume with the world size it was saved with)");
  const io::SafetensorsContents contents = io::load_safetensors(model_path);
  const auto ws = contents.metadata.find("world_size");
  TORCH_CHECK(ws != contents.metadata.end() && ws->second == std::to_string(world_size_), "checkpoint ", dir,
              " was saved by ", ws == contents.metadata.end() ? "an unknown number of" : ws->second,
              " ranks; this run has ", world_size_, " (resume with torchrun --nproc_per_node=",
              ws == contents.metadata.end() ? "N" : ws->second, ")");
  {
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    TORCH_CHECK(contents.tensors.size() == params.size(), "checkpoint ", model_path, " has ", contents.tensors.size(),
                " tensors, the model ", params.size());
    for (auto& item : params) {
      auto it = contents.tensors.find(item.key());
      TORCH_CHECK(it != contents.tensors.end() && it->second.sizes() == item.value().sizes(), "checkpoint ",
                  model_path, ": '", item.key(), "' is missing or has another shape");
    }
    for (auto& item : params) item.value().copy_(contents.tensors.at(item.key()));
  }
  if (auto* lowbit_opt = dynamic_cast<optim::AdamWLowBit*>(&optimizer)) {
    optim::load_state(*lowbit_opt, rank_file(d, "optimizer", rank_, ".safetensors"));
  } else {
    const std::string path = rank_file(d, "optimizer", rank_, ".pt");
    TORCH_CHECK(fs::exists(path), "checkpoint ", dir, " has no ", path, " (saved with another optim.name?)");
    torch::load(optimizer, path);
  }
  return std::stoll(contents.metadata.at("step"));
}

}  // namespace lowbit::recipes
