// lowbit::distributed::fully_shard — FSDP for a torch::nn::Module tree in C++, on a c10d group.
//
//   auto group = lowbit::distributed::init_process_group();
//   for (auto& block : blocks) units.push_back(fully_shard(*block, group));   // inner units first
//   auto root = fully_shard(*model, group);                                   // the remaining params
//   auto optimizer = torch::optim::AdamW(model->parameters(), ...);           // sees only shards
//   ...
//   auto logits = root->forward([&] { return model->forward(tokens); });      // in the model:
//   x = units[i]->forward([&] { return blocks[i]->forward(x); });
//
// Every parameter is split on dim 0 into world_size chunks of ceil(rows / world_size) rows (the
// last chunks shorter or empty, as torch.chunk and FSDP2 split); the module's own tensors then hold
// this rank's chunk, so optimizers built afterwards (torch::optim, lowbit::optim) see only shards.
// A unit's forward gathers its parameters with one all-gather (the chunks padded to equal size,
// sent as bytes), runs, and frees them (reshard_after_forward) or keeps them for backward. When
// backward reaches the unit's outputs it gathers again; when every parameter's gradient has
// accumulated, one reduce-scatter averages the gradients into the shards' .grad.
//
// C++ modules have no forward hooks, so a unit runs through its forward(fn): code that calls the
// module directly (outside forward) sees this rank's shard, not the parameter.
//
// float8: a lowbit::nn::Linear whose float8 method has enable_fsdp_float8_all_gather (tensorwise)
// gathers its weight as fp8 bytes plus one scale (amax all-reduced MAX, or the precomputed one,
// see precompute_float8_dynamic_scale) and computes with it directly (float8_linear_precast).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/ordered_dict.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <lowbit/distributed/process_group.h>

namespace lowbit::distributed {

struct FullyShardOptions {
  // Free the gathered parameters after forward and gather them again when backward reaches the
  // unit (holds one unit's parameters at a time); false keeps them gathered until backward is done.
  bool reshard_after_forward = true;
  // false: every rank keeps the full parameters and gradients are all-reduced and averaged (data
  // parallel, DDP), through the same unit code with nothing to gather.
  bool shard = true;
};

// Bytes one unit moved since construction (or reset_comm_counters()), counted as the collective
// buffers' sizes: all-gather output, reduce-scatter input, all-reduce tensors.
struct CommCounters {
  int64_t all_gather_bytes = 0, all_gathers = 0;
  int64_t reduce_scatter_bytes = 0, reduce_scatters = 0;
  int64_t all_reduce_bytes = 0, all_reduces = 0;
};

class FullyShardedModule;
std::shared_ptr<FullyShardedModule> fully_shard(torch::nn::Module& module, const ProcessGroup& group,
                                                const FullyShardOptions& options);
void precompute_float8_dynamic_scale(FullyShardedModule& root);
torch::OrderedDict<std::string, at::Tensor> full_state_dict(FullyShardedModule& root);
void load_full_state_dict(FullyShardedModule& root, const torch::OrderedDict<std::string, at::Tensor>& state_dict);
void save_full_state_dict(FullyShardedModule& root, const std::string& path,
                          const std::map<std::string, std::string>& metadata);
double clip_grad_norm_(FullyShardedModule& root, double max_norm);

class FullyShardedModule : public std::enable_shared_from_this<FullyShardedModule> {
 public:
  struct Param;  // one sharded parameter (fully_shard.cpp)

  FullyShardedModule(torch::nn::Module& module, ProcessGroup group, FullyShardOptions options);
  ~FullyShardedModule();
  FullyShardedModule(const FullyShardedModule&) = delete;
  FullyShardedModule& operator=(const FullyShardedModule&) = delete;

  // Runs fn() (the module's forward) with this unit's parameters gathered; hooks the outputs so
  // backward gathers again and reduces the gradients. fn may return an at::Tensor, a
  // std::vector<at::Tensor> or a std::tuple of tensors.
  template <typename Fn>
  auto forward(Fn&& fn) -> std::invoke_result_t<Fn> {
    pre_forward();
    auto out = fn();
    std::vector<at::Tensor> outputs;
    collect_tensors(out, outputs);
    post_forward(outputs);
    return out;
  }

  void unshard();  // gathers the parameters now (no-op if gathered)
  void reshard();  // back to shards (no-op if sharded)

  torch::nn::Module& module() const { return *module_; }
  const ProcessGroup& group() const { return group_; }
  const FullyShardOptions& options() const { return options_; }
  // The parameters this unit shards, named relative to module().
  std::vector<std::string> parameter_names() const;
  // Units created earlier for submodules of module() (fully_shard on inner modules first).
  const std::vector<std::shared_ptr<FullyShardedModule>>& children() const { return children_; }
  const CommCounters& comm_counters() const { return counters_; }
  void reset_comm_counters() { counters_ = {}; }

  // Internal, called from autograd hooks.
  void pre_backward();
  void on_grad_accumulated(size_t param_index);
  void finish_backward();

 private:
  friend std::shared_ptr<FullyShardedModule> fully_shard(torch::nn::Module& module, const ProcessGroup& group,
                                                         const FullyShardOptions& options);
  friend void precompute_float8_dynamic_scale(FullyShardedModule& root);
  friend torch::OrderedDict<std::string, at::Tensor> full_state_dict(FullyShardedModule& root);
  friend void load_full_state_dict(FullyShardedModule& root, const torch::OrderedDict<std::string, at::Tensor>& sd);
  friend double clip_grad_norm_(FullyShardedModule& root, double max_norm);
  friend void save_full_state_dict(FullyShardedModule& root, const std::string& path,
                                   const std::map<std::string, std::string>& metadata);

  static void collect_tensors(const at::Tensor& t, std::vector<at::Tensor>& out) { out.push_back(t); }
  static void collect_tensors(const std::vector<at::Tensor>& ts, std::vector<at::Tensor>& out) {
    out.insert(out.end(), ts.begin(), ts.end());
  }
  template <typename... Ts>
  static void collect_tensors(const std::tuple<Ts...>& t, std::vector<at::Tensor>& out) {
    std::apply([&](const auto&... x) { (collect_tensors(x, out), ...); }, t);
  }
  template <typename T>
  static void collect_tensors(const T&, std::vector<at::Tensor>&) {}

  void pre_forward();
  void post_forward(const std::vector<at::Tensor>& outputs);
  void reduce_gradients();
  std::vector<at::Tensor> float8_scales();

  torch::nn::Module* module_;
  ProcessGroup group_;
  FullyShardOptions options_;
  std::vector<std::unique_ptr<Param>> params_;
  std::vector<std::shared_ptr<FullyShardedModule>> children_;
  bool gathered_ = false;
  bool in_backward_ = false;     // pre_backward ran and finish_backward has not
  bool reduced_ = false;         // gradients of this backward already reduced
  size_t grads_ready_ = 0;
  CommCounters counters_;
};

// Shards `module`'s parameters that no earlier fully_shard call took, over `group`.
std::shared_ptr<FullyShardedModule> fully_shard(torch::nn::Module& module, const ProcessGroup& group,
                                                const FullyShardOptions& options = {});

// After optimizer.step(): computes the fp8 all-gather scale (amax) of every float8 weight in
// `root` and its child units with ONE all-reduce; gathers use it until the weight changes (its
// version moves), so a stale scale is never used.
void precompute_float8_dynamic_scale(FullyShardedModule& root);

// The full (unsharded) parameters of `root` and its child units, named relative to root.module():
// every rank receives every tensor (a collective: call on all ranks).
torch::OrderedDict<std::string, at::Tensor> full_state_dict(FullyShardedModule& root);
// Loads full tensors (every rank holds all of them) into the shards: each rank copies its rows.
// Checks every name and shape first; on error nothing is changed.
void load_full_state_dict(FullyShardedModule& root, const torch::OrderedDict<std::string, at::Tensor>& state_dict);

// torch::nn::utils::clip_grad_norm_ for a sharded model: the 2-norm of the whole gradient (each
// shard's squared norm, all-reduced once), then every gradient scaled by
// min(1, max_norm / (norm + 1e-6)). Returns the norm (a host sync, as clip_grad_norm_'s is).
double clip_grad_norm_(FullyShardedModule& root, double max_norm);

// full_state_dict written by rank 0 as one safetensors file (with `metadata`); all ranks return
// when the file is complete. The file loads into an unsharded model as it is.
void save_full_state_dict(FullyShardedModule& root, const std::string& path,
                          const std::map<std::string, std::string>& metadata = {});
// Every rank reads a safetensors file of full tensors and loads its rows (load_full_state_dict).
void load_full_state_dict(FullyShardedModule& root, const std::string& path);

}  // namespace lowbit::distributed
