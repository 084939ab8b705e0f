// The distributed side of lowbit-train (distributed.* keys): the process group from torchrun's
// environment, one fully_shard unit per transformer block plus the root, and rank-aware outputs
// and checkpoints.
//
//   torchrun --standalone --nproc_per_node=2 --no-python lowbit-train --config pretrain_tiny distributed.enabled=true
//
// Rank r trains on batch (step * world_size + r) of the single-process recipe's stream, so one rank
// is the single-process run. Rank 0 prints and writes config.yaml / metrics.jsonl; every rank writes
// its shard of the checkpoint, and a resume needs the world size the checkpoint was saved with.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <string>

#include <lowbit/recipes/config.h>
#include <lowbit/recipes/llama.h>

namespace lowbit::recipes {

class DistributedRun {
 public:
  // Joins the process group when distributed.enabled (an error on a build without
  // LOWBIT_DISTRIBUTED); otherwise a single-process run (rank 0 of 1).
  explicit DistributedRun(const Config& config);
  ~DistributedRun();
  DistributedRun(const DistributedRun&) = delete;
  DistributedRun& operator=(const DistributedRun&) = delete;

  bool enabled() const { return enabled_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_main() const { return rank_ == 0; }
  // train.device, with CUDA ranks on GPU LOCAL_RANK.
  at::Device device(const std::string& train_device) const;
  // float8.* plus distributed.float8_all_gather, for convert_to_float8_training.
  bool float8_all_gather() const { return float8_all_gather_; }

  // Shards each block and the rest of the model (call after float8 conversion, before the
  // optimizer is built: it must see the shards).
  void shard(Llama& model);
  at::Tensor forward(Llama& model, const at::Tensor& tokens);
  // torch's clip_grad_norm_ over the whole (sharded) model.
  void clip_grad_norm(Llama& model, double max_norm);
  // After optimizer.step(): the float8 scales for the next all-gathers (one all-reduce).
  void after_optimizer_step();
  // The mean of `value` over the ranks (every rank must call it).
  double mean(double value);
  void barrier();

  // Distributed checkpoints: dir/model.safetensors (the full model, by rank 0) plus
  // dir/shards/{model,optimizer}.rank<r>.* (each rank's parameters and optimizer state).
  void save_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer, int64_t step);
  // Restores this rank's shards; the checkpoint must come from as many ranks as this run has.
  int64_t load_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& optimizer);
  // Whether `dir` holds a distributed checkpoint (shards/).
  static bool is_sharded_checkpoint(const std::string& dir);

 private:
  struct State;
  std::unique_ptr<State> state_;
  bool enabled_ = false, float8_all_gather_ = false;
  mutable at::Device device_ = at::kCPU;  // where small collectives (mean) run: the training device
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
};

}  // namespace lowbit::recipes
