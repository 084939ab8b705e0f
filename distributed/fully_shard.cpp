// fully_shard: one unit's parameters, their gathering, and the autograd hooks that drive them.
//
// A parameter keeps its identity (the TensorImpl the module's members and the optimizer hold);
// what it holds changes with set_data: this rank's shard (a view of `padded_shard`, rows beyond the
// parameter are zero padding) when sharded, the gathered full tensor while the unit runs. Autograd
// saves leaf parameters by identity, so backward sees whatever the parameter holds when it runs:
// the pre-backward hook gathers again before the unit's backward nodes run, and the post-accumulate
// hook (after the last one) reduces the gradient and puts the shard back.
#include <lowbit/distributed/fully_shard.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include <lowbit/core/float8_scale.h>
#include <lowbit/float8/float8_linear_method.h>
#include <lowbit/nn/linear.h>

#include "fully_shard_param.h"

namespace lowbit::distributed {
namespace {

constexpr const char* kWhere = "lowbit::distributed::fully_shard";

// Which parameters (by TensorImpl) and modules already belong to a unit.
struct Registry {
  std::mutex mutex;
  std::unordered_map<const c10::TensorImpl*, std::weak_ptr<FullyShardedModule>> params;
  std::map<const torch::nn::Module*, std::weak_ptr<FullyShardedModule>> modules;
};
Registry& registry() {
  static Registry r;
  return r;
}

// Calls the unit when autograd has accumulated a parameter's gradient.
struct GradReadyHook : torch::autograd::PostAccumulateGradHook {
  GradReadyHook(std::weak_ptr<FullyShardedModule> unit, size_t index) : unit(std::move(unit)), index(index) {}
  void operator()(const torch::autograd::Variable&) override {
    if (auto u = unit.lock()) u->on_grad_accumulated(index);
  }
  std::weak_ptr<FullyShardedModule> unit;
  size_t index;
};

// Writes into a tensor that autograd saved (a gathered fp8 weight or its scale) without bumping
// its version: the bytes written are the ones saved (the weight did not change in between).
template <typename Fn>
void write_preserving_version(const at::Tensor& t, Fn&& fn) {
  c10::VariableVersion vc = t.unsafeGetTensorImpl()->version_counter();
  const uint32_t v = vc.current_version();
  fn();
  vc.set_version(v);
}

// Gives a freed storage its bytes back (same StorageImpl, so every view and saved tensor sees them).
void ensure_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (s->nbytes() >= nbytes) return;
  s->set_data_ptr_noswap(s->allocator()->allocate(nbytes));
  s->set_nbytes(nbytes);
}

void free_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  s->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  s->set_nbytes(0);
}

}  // namespace

// ---- construction ----------------------------------------------------------------------------

FullyShardedModule::FullyShardedModule(torch::nn::Module& module, ProcessGroup group, FullyShardOptions options)
    : module_(&module), group_(std::move(group)), options_(options) {}

FullyShardedModule::~FullyShardedModule() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& p : params_) r.params.erase(p->param.unsafeGetTensorImpl());
  r.modules.erase(module_);
}

std::shared_ptr<FullyShardedModule> fully_shard(torch::nn::Module& module, const ProcessGroup& group,
                                                const FullyShardOptions& options) {
  auto unit = std::make_shared<FullyShardedModule>(module, group, options);
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  TORCH_CHECK(!r.modules.count(&module) || r.modules[&module].expired(), kWhere,
              ": this module is already sharded (fully_shard once per module)");
  // Child units: units of modules inside this one.
  for (const auto& m : module.modules(/*include_self=*/false)) {
    auto it = r.modules.find(m.get());
    if (it != r.modules.end()) {
      if (auto child = it->second.lock()) unit->children_.push_back(child);
    }
  }
  // The parameters no unit has yet, each once (tied parameters appear under several names).
  std::vector<std::pair<std::string, at::Tensor>> mine;
  std::unordered_map<const c10::TensorImpl*, bool> seen;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const c10::TensorImpl* impl = item.value().unsafeGetTensorImpl();
    if (seen.count(impl)) continue;
    seen[impl] = true;
    auto it = r.params.find(impl);
    if (it != r.params.end() && !it->second.expired()) continue;
    mine.emplace_back(item.key(), item.value());
  }
  // float8 linears whose weight travels as fp8.
  std::unordered_map<const c10::TensorImpl*, std::shared_ptr<float8::Float8LinearMethod>> fp8;
  if (options.shard) {
    for (const auto& m : module.modules(/*include_self=*/true)) {
      auto* linear = dynamic_cast<nn::LinearImpl*>(m.get());
      if (linear == nullptr) continue;
      auto method = std::dynamic_pointer_cast<float8::Float8LinearMethod>(linear->method_ptr());
      if (method && method->config().enable_fsdp_float8_all_gather) fp8[linear->weight.unsafeGetTensorImpl()] = method;
    }
  }
  for (size_t i = 0; i < mine.size(); ++i) {
    auto& [name, tensor] = mine[i];
    auto it = fp8.find(tensor.unsafeGetTensorImpl());
    unit->params_.push_back(detail::make_sharded_param(name, tensor, group, options.shard,
                                                       it == fp8.end() ? nullptr : it->second));
  }
  for (size_t i = 0; i < unit->params_.size(); ++i) {
    auto& p = unit->params_[i];
    r.params[p->param.unsafeGetTensorImpl()] = unit;
    if (p->param.requires_grad()) {
      torch::autograd::impl::set_post_acc_grad_hooks(p->param, std::make_unique<GradReadyHook>(unit, i));
    }
  }
  r.modules[&module] = unit;
  return unit;
}

std::vector<std::string> FullyShardedModule::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& p : params_) names.push_back(p->name);
  return names;
}

// ---- forward -----------------------------------------------------------------------------------

void FullyShardedModule::pre_forward() {
  if (in_backward_) {  // the last backward through this unit never finished (an error, or no backward)
    for (auto& p : params_) {
      if (p->grad_stash.defined()) p->param.mutable_grad() = p->grad_stash;
      p->grad_stash = at::Tensor();
    }
    in_backward_ = false;
  }
  unshard();
}

void FullyShardedModule::post_forward(const std::vector<at::Tensor>& outputs) {
  bool hooked = false;
  if (at::GradMode::is_enabled()) {
    std::weak_ptr<FullyShardedModule> weak = shared_from_this();
    for (const at::Tensor& out : outputs) {
      if (!out.defined() || !out.requires_grad()) continue;
      out.register_hook([weak](const at::Tensor&) {
        if (auto u = weak.lock()) u->pre_backward();
      });
      hooked = true;
    }
  }
  // Nothing will come back for these parameters (no graph): always reshard.
  if (options_.reshard_after_forward || !hooked) reshard();
}

// ---- gather / free -----------------------------------------------------------------------------

std::vector<at::Tensor> FullyShardedModule::float8_scales() {
  // One amax per fp8 weight: the precomputed one while the weight is unchanged, else this rank's
  // shard amax, all-reduced (MAX) together in one call.
  std::vector<at::Tensor> scales;
  std::vector<size_t> dynamic;
  std::vector<at::Tensor> shards;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = *params_[i];
    if (!p.fp8) continue;
    if (!p.precomputed_amax.defined() || p.precomputed_version != p.param._version()) {
      dynamic.push_back(i);
      shards.push_back(p.param.detach());  // sharded: the parameter holds this rank's rows
    }
  }
  std::unordered_map<size_t, at::Tensor> amax;
  if (!dynamic.empty()) {
    at::Tensor a = core::float8_amax(shards);
    group_.all_reduce(a, c10d::ReduceOp::MAX);
    counters_.all_reduces += 1;
    counters_.all_reduce_bytes += a.numel() * a.element_size();
    for (size_t k = 0; k < dynamic.size(); ++k) amax[dynamic[k]] = a.narrow(0, static_cast<int64_t>(k), 1);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = *params_[i];
    if (!p.fp8) continue;
    const at::Tensor a = amax.count(i) ? amax[i] : p.precomputed_amax.reshape({1});
    scales.push_back(
        core::float8_amax_to_scale(a, at::kFloat8_e4m3fn, p.fp8->config().round_scales_to_power_of_2).reshape({}));
  }
  return scales;
}

void FullyShardedModule::unshard() {
  if (gathered_ || !options_.shard || params_.empty()) {
    gathered_ = true;
    return;
  }
  // No graph: an op on a parameter under grad mode would create its gradient accumulator now, with
  // the shard's shape, and autograd would keep using it.
  at::NoGradGuard no_grad;
  const int64_t ws = group_.world_size();
  const std::vector<at::Tensor> scales = float8_scales();
  // One flat byte buffer: each parameter's padded shard (fp8 weights: their e4m3 bytes).
  int64_t total = 0;
  for (auto& p : params_) total += p->gather_bytes();
  const at::Tensor flat_in = at::empty({total}, params_[0]->param.options().dtype(at::kByte));
  int64_t offset = 0;
  size_t k = 0;
  for (auto& p : params_) {
    p->fill_gather_input(flat_in.narrow(0, offset, p->gather_bytes()), p->fp8 ? scales[k++] : at::Tensor());
    offset += p->gather_bytes();
  }
  at::Tensor flat_out = at::empty({ws * total}, flat_in.options());
  group_.all_gather_into(flat_out, flat_in);
  counters_.all_gathers += 1;
  counters_.all_gather_bytes += flat_out.numel();
  // Copy out: each parameter's bytes from every rank's segment, in rank order.
  const at::Tensor by_rank = flat_out.view({ws, total});
  offset = 0;
  k = 0;
  for (auto& p : params_) {
    const at::Tensor seg = by_rank.narrow(1, offset, p->gather_bytes());
    if (p->fp8) {
      const at::Tensor& scale = scales[k++];
      ensure_storage(p->fp8_full);
      write_preserving_version(p->fp8_full, [&] { p->fp8_full.view(at::kByte).view({ws, -1}).copy_(seg); });
      write_preserving_version(p->fp8_scale, [&] { p->fp8_scale.copy_(scale); });
      p->fp8->set_gathered_weight(p->fp8_full.narrow(0, 0, p->rows), p->fp8_scale);
      p->param.set_data(p->placeholder);
    } else {
      at::Tensor full = at::empty({ws * p->gather_bytes()}, flat_in.options());
      full.view({ws, -1}).copy_(seg);
      p->param.set_data(full.view(p->param.scalar_type()).view(p->padded_full_sizes()).narrow(0, 0, p->rows));
    }
    offset += p->gather_bytes();
  }
  gathered_ = true;
}

void FullyShardedModule::reshard() {
  if (!gathered_) return;
  at::NoGradGuard no_grad;
  gathered_ = false;
  if (!options_.shard) return;
  for (auto& p : params_) {
    p->param.set_data(p->shard_view());
    if (p->fp8) {
      p->fp8->clear_gathered_weight();
      free_storage(p->fp8_full);  // autograd may hold a view: backward gathers into it again
    }
  }
}

// ---- backward ----------------------------------------------------------------------------------

void FullyShardedModule::pre_backward() {
  if (in_backward_) return;
  in_backward_ = true;
  reduced_ = false;
  grads_ready_ = 0;
  // Gradients accumulated so far (previous micro-batches) are shard-shaped: keep them aside while
  // autograd accumulates full-shaped ones.
  for (auto& p : params_) {
    p->grad_stash = p->param.grad();
    if (p->grad_stash.defined()) p->param.mutable_grad() = at::Tensor();
    p->grad_ready = false;
  }
  unshard();
  std::weak_ptr<FullyShardedModule> weak = shared_from_this();
  torch::autograd::Engine::get_default_engine().queue_callback([weak] {
    if (auto u = weak.lock()) u->finish_backward();
  });
}

void FullyShardedModule::on_grad_accumulated(size_t index) {
  auto& p = *params_[index];
  if (!in_backward_ || p.grad_ready) return;
  p.grad_ready = true;
  size_t wanted = 0;
  for (auto& q : params_) wanted += q->param.requires_grad() ? 1 : 0;
  if (++grads_ready_ == wanted) reduce_gradients();
}

void FullyShardedModule::finish_backward() {
  if (!in_backward_) return;
  if (!reduced_ && grads_ready_ > 0) reduce_gradients();  // some parameters got no gradient
  for (auto& p : params_) {
    if (!reduced_ && p->grad_stash.defined()) p->param.mutable_grad() = p->grad_stash;
    p->grad_stash = at::Tensor();
  }
  in_backward_ = false;
  reshard();
}

void FullyShardedModule::reduce_gradients() {
  reduced_ = true;
  at::NoGradGuard no_grad;
  const int64_t ws = group_.world_size();
  // Buckets by gradient dtype (one reduce-scatter / all-reduce each; one for most models).
  std::map<at::ScalarType, std::vector<Param*>> buckets;
  for (auto& p : params_) {
    if (p->param.requires_grad()) buckets[p->grad_dtype()].push_back(p.get());
  }
  std::vector<std::pair<Param*, at::Tensor>> reduced;
  for (auto& [dtype, ps] : buckets) {
    int64_t total = 0;
    for (Param* p : ps) total += p->shard_numel_padded();
    const auto opts = ps[0]->param.options().dtype(dtype);
    if (options_.shard) {
      at::Tensor flat_in = at::zeros({ws, total}, opts);
      int64_t offset = 0;
      for (Param* p : ps) {
        p->fill_reduce_input(flat_in.narrow(1, offset, p->shard_numel_padded()));
        offset += p->shard_numel_padded();
      }
      at::Tensor flat_out = at::empty({total}, opts);
      group_.reduce_scatter(flat_out, flat_in.view({-1}), c10d::ReduceOp::SUM);
      counters_.reduce_scatters += 1;
      counters_.reduce_scatter_bytes += flat_in.numel() * flat_in.element_size();
      flat_out.div_(ws);
      offset = 0;
      for (Param* p : ps) {
        reduced.emplace_back(p, p->shard_of(flat_out.narrow(0, offset, p->shard_numel_padded())));
        offset += p->shard_numel_padded();
      }
    } else {
      at::Tensor flat = at::zeros({total}, opts);
      int64_t offset = 0;
      for (Param* p : ps) {
        p->fill_reduce_input(flat.narrow(0, offset, p->shard_numel_padded()).view({1, -1}));
        offset += p->shard_numel_padded();
      }
      group_.all_reduce(flat, c10d::ReduceOp::SUM);
      counters_.all_reduces += 1;
      counters_.all_reduce_bytes += flat.numel() * flat.element_size();
      flat.div_(ws);
      offset = 0;
      for (Param* p : ps) {
        reduced.emplace_back(p, p->shard_of(flat.narrow(0, offset, p->shard_numel_padded())));
        offset += p->shard_numel_padded();
      }
    }
  }
  reshard();
  for (auto& [p, g] : reduced) {
    at::Tensor grad = g.to(p->param.scalar_type());
    if (p->grad_stash.defined()) grad = p->grad_stash.add_(grad);
    p->param.mutable_grad() = grad;
    p->grad_stash = at::Tensor();
  }
  // a parameter without a gradient this time keeps what it had
  for (auto& p : params_) {
    if (p->grad_stash.defined()) {
      p->param.mutable_grad() = p->grad_stash;
      p->grad_stash = at::Tensor();
    }
  }
}

}  // namespace lowbit::distributed
