// What a sharded model offers beyond forward and backward: the float8 scale precompute, and the
// full state dict (gathered from the shards, loaded back into them).
#include <lowbit/distributed/fully_shard.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include <functional>

#include <lowbit/core/float8_scale.h>
#include <lowbit/io/safetensors.h>

#include "fully_shard_param.h"

namespace lowbit::distributed {
namespace {

// root and its child units, each once, children first.
void collect_units(FullyShardedModule& unit, std::vector<FullyShardedModule*>& out) {
  for (const auto& c : unit.children()) collect_units(*c, out);
  for (auto* u : out) {
    if (u == &unit) return;
  }
  out.push_back(&unit);
}

// The name a unit's parameter has relative to root.module().
std::string qualified_name(const FullyShardedModule& root, const FullyShardedModule& unit, const std::string& name) {
  if (&root == &unit) return name;
  for (const auto& item : root.module().named_modules("", /*include_self=*/false)) {
    if (item.value().get() == &unit.module()) return item.key() + "." + name;
  }
  TORCH_CHECK(false, "lowbit::distributed: a child unit's module is not inside the root module");
}

}  // namespace

void precompute_float8_dynamic_scale(FullyShardedModule& root) {
  std::vector<FullyShardedModule*> units;
  collect_units(root, units);
  std::vector<FullyShardedModule::Param*> params;
  std::vector<at::Tensor> shards;
  for (auto* u : units) {
    TORCH_CHECK(!u->gathered_, "precompute_float8_dynamic_scale: call it after optimizer.step(), with every unit "
                "sharded (a unit is gathered now)");
    for (auto& p : u->params_) {
      if (!p->fp8) continue;
      params.push_back(p.get());
      shards.push_back(p->param.detach());
    }
  }
  if (params.empty()) return;
  at::NoGradGuard no_grad;
  at::Tensor amax = core::float8_amax(shards);
  root.group_.all_reduce(amax, c10d::ReduceOp::MAX);
  root.counters_.all_reduces += 1;
  root.counters_.all_reduce_bytes += amax.numel() * amax.element_size();
  for (size_t i = 0; i < params.size(); ++i) {
    params[i]->precomputed_amax = amax.select(0, static_cast<int64_t>(i));
    params[i]->precomputed_version = params[i]->param._version();
  }
}

torch::OrderedDict<std::string, at::Tensor> full_state_dict(FullyShardedModule& root) {
  std::vector<FullyShardedModule*> units;
  collect_units(root, units);
  torch::OrderedDict<std::string, at::Tensor> out;
  at::NoGradGuard no_grad;
  for (auto* u : units) {
    TORCH_CHECK(!u->gathered_, "full_state_dict: a unit is gathered now (call it between steps)");
    const int64_t ws = u->group_.world_size();
    for (auto& p : u->params_) {
      const at::Tensor local = p->param.detach();
      at::Tensor full;
      if (!u->options_.shard) {
        full = local.clone();
      } else {
        std::vector<int64_t> padded = p->full_sizes;
        padded[0] = p->rows_per_rank;
        at::Tensor in = at::zeros(padded, local.options());
        in.narrow(0, 0, p->local_rows).copy_(local);
        padded[0] = ws * p->rows_per_rank;
        at::Tensor gathered = at::empty(padded, local.options());
        u->group_.all_gather_into(gathered, in);
        full = gathered.narrow(0, 0, p->rows).clone();
      }
      out.insert(qualified_name(root, *u, p->name), full);
    }
  }
  return out;
}

void load_full_state_dict(FullyShardedModule& root, const torch::OrderedDict<std::string, at::Tensor>& state_dict) {
  std::vector<FullyShardedModule*> units;
  collect_units(root, units);
  // Check everything first: all or nothing.
  std::vector<std::pair<FullyShardedModule::Param*, at::Tensor>> plan;
  size_t expected = 0;
  for (auto* u : units) {
    TORCH_CHECK(!u->gathered_, "load_full_state_dict: a unit is gathered now (call it between steps)");
    for (auto& p : u->params_) {
      ++expected;
      const std::string name = qualified_name(root, *u, p->name);
      const at::Tensor* t = state_dict.find(name);
      TORCH_CHECK(t != nullptr, "load_full_state_dict: no tensor '", name, "' in the state dict");
      TORCH_CHECK(t->sizes().vec() == p->full_sizes, "load_full_state_dict: '", name, "' has shape ", t->sizes(),
                  ", the parameter has ", c10::IntArrayRef(p->full_sizes));
      const int64_t begin = std::min(p->rows, u->group_.rank() * p->rows_per_rank);
      plan.emplace_back(p.get(), u->options_.shard ? t->narrow(0, begin, p->local_rows) : *t);
    }
  }
  TORCH_CHECK(state_dict.size() == expected, "load_full_state_dict: the state dict has ", state_dict.size(),
              " tensors, the sharded model ", expected, " parameters");
  at::NoGradGuard no_grad;
  for (auto& [p, rows] : plan) p->param.copy_(rows);
}

double clip_grad_norm_(FullyShardedModule& root, double max_norm) {
  std::vector<FullyShardedModule*> units;
  collect_units(root, units);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  at::Tensor sharded_sq, replicated_sq;  // float32 sums of squares, on the gradients' device
  auto add = [](at::Tensor& acc, const at::Tensor& g) {
    const at::Tensor sq = g.to(at::kFloat).square().sum();
    acc = acc.defined() ? acc + sq : sq;
  };
  for (auto* u : units) {
    for (auto& p : u->params_) {
      const at::Tensor& g = p->param.grad();
      if (!g.defined()) continue;
      grads.push_back(g);
      add(u->options_.shard ? sharded_sq : replicated_sq, g);
    }
  }
  // Every rank joins the all-reduce, even one whose shards are all empty.
  const auto options = grads.empty() ? at::TensorOptions().dtype(at::kFloat)
                                     : grads[0].options().dtype(at::kFloat);
  at::Tensor total = sharded_sq.defined() ? sharded_sq.reshape({1}) : at::zeros({1}, options);
  root.group_.all_reduce(total, c10d::ReduceOp::SUM);
  if (replicated_sq.defined()) total = total + replicated_sq;  // identical on every rank: counted once
  const double norm = total.sqrt().item<double>();
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    for (auto& g : grads) g.mul_(coef);
  }
  return norm;
}

void save_full_state_dict(FullyShardedModule& root, const std::string& path,
                          const std::map<std::string, std::string>& metadata) {
  const auto full = full_state_dict(root);
  if (root.group().rank() == 0) {
    std::map<std::string, at::Tensor> tensors;
    for (const auto& item : full) tensors[item.key()] = item.value();
    io::save_safetensors(path, tensors, metadata);
  }
  root.group_.barrier();
}

void load_full_state_dict(FullyShardedModule& root, const std::string& path) {
  const io::SafetensorsContents contents = io::load_safetensors(path);
  torch::OrderedDict<std::string, at::Tensor> sd;
  for (const auto& [name, t] : contents.tensors) sd.insert(name, t);
  load_full_state_dict(root, sd);
}

}  // namespace lowbit::distributed
