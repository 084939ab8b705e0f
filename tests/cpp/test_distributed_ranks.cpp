// lowbit::distributed on several ranks: started by torchrun (ctest: distributed_2_ranks), one
// process per rank, Gloo on CPU. Every rank runs every test in the same order; every collective
// waits at most the group's timeout.
//
// The sharded model (fully_shard per layer plus the root) must equal the unsharded model whose
// gradients are averaged over the ranks, bit for bit: float8 tensorwise with fp8 all-gather and an
// uneven 33-row weight, plain fp32, replicate (DDP), with reshard_after_forward both ways and the
// float8 scale precompute on and off.
#include <gtest/gtest.h>

#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <lowbit/distributed/fully_shard.h>
#include <lowbit/distributed/process_group.h>
#include <lowbit/float8/convert.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/nn/linear.h>
#include <lowbit/optim/adamw_lowbit.h>

namespace {

namespace dist = lowbit::distributed;
using lowbit::nn::Linear;
using torch::nn::LinearOptions;

dist::ProcessGroup* g_group = nullptr;
dist::ProcessGroup& group() { return *g_group; }

// The MLP of tests/python/fsdp_workers.py: Linear(32, 64), ReLU, Linear(64, 33, bias=False), ReLU,
// Linear(33, 16), with nn.Sequential's parameter names ("0.weight", "2.weight", ...).
struct MlpImpl : torch::nn::Module {
  MlpImpl() {
    l0 = register_module("0", Linear(32, 64));
    l2 = register_module("2", Linear(LinearOptions(64, 33).bias(false)));
    l4 = register_module("4", Linear(33, 16));
  }
  at::Tensor layer(size_t i, Linear& l, const at::Tensor& x) {
    return units.empty() ? l->forward(x) : units[i]->forward([&] { return l->forward(x); });
  }
  at::Tensor forward(at::Tensor x) {
    x = at::relu(layer(0, l0, x));
    x = at::relu(layer(1, l2, x));
    return layer(2, l4, x);
  }
  Linear l0{nullptr}, l2{nullptr}, l4{nullptr};
  std::vector<std::shared_ptr<dist::FullyShardedModule>> units;  // one per layer once sharded
};
TORCH_MODULE(Mlp);

Mlp make_mlp(bool float8, bool fp8_all_gather) {
  torch::manual_seed(0);
  Mlp m;
  if (float8) {
    lowbit::float8::Float8LinearConfig c;
    c.emulate = true;
    c.pad_inner_dim = true;
    c.enable_fsdp_float8_all_gather = fp8_all_gather;
    lowbit::float8::convert_to_float8_training(*m, c);
  }
  return m;
}

// Shards each layer, then the root (which has no parameters of its own here).
std::shared_ptr<dist::FullyShardedModule> shard(Mlp& m, dist::FullyShardOptions o) {
  m->units = {dist::fully_shard(*m->l0, group(), o), dist::fully_shard(*m->l2, group(), o),
              dist::fully_shard(*m->l4, group(), o)};
  return dist::fully_shard(*m, group(), o);
}

at::Tensor batch(int step) {
  auto g = at::detail::createCPUGenerator(100 + 1000 * step + group().rank());
  return at::randn({8, 32}, g);
}

void average_grads(torch::nn::Module& m) {
  for (auto& p : m.parameters()) {
    group().all_reduce(p.mutable_grad(), c10d::ReduceOp::SUM);
    p.mutable_grad().div_(group().world_size());
  }
}

std::map<std::string, at::Tensor> params_of(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : m.named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

struct Case {
  bool float8, fp8_all_gather, reshard_after_forward, precompute, shard;
};

// Sharded vs unsharded-with-averaged-grads over 4 AdamW steps: losses and parameters bitwise equal.
void expect_parity(const Case& c) {
  Mlp ref = make_mlp(c.float8, false);
  Mlp sharded = make_mlp(c.float8, c.fp8_all_gather);
  dist::FullyShardOptions o;
  o.reshard_after_forward = c.reshard_after_forward;
  o.shard = c.shard;
  auto root = shard(sharded, o);
  torch::optim::AdamW ref_opt(ref->parameters(), torch::optim::AdamWOptions(1e-2));
  torch::optim::AdamW opt(sharded->parameters(), torch::optim::AdamWOptions(1e-2));
  for (int step = 0; step < 4; ++step) {
    const at::Tensor x = batch(step);
    at::Tensor loss = root->forward([&] { return sharded->forward(x); }).square().mean();
    loss.backward();
    opt.step();
    opt.zero_grad();
    if (c.precompute) dist::precompute_float8_dynamic_scale(*root);
    at::Tensor ref_loss = ref->forward(x).square().mean();
    ref_loss.backward();
    average_grads(*ref);
    ref_opt.step();
    ref_opt.zero_grad();
    ASSERT_EQ(loss.item<float>(), ref_loss.item<float>()) << "step " << step;
  }
  const auto full = dist::full_state_dict(*root);
  const auto expected = params_of(*ref);
  ASSERT_EQ(full.size(), expected.size());
  for (const auto& [name, t] : expected) {
    ASSERT_NE(full.find(name), nullptr) << name;
    EXPECT_TRUE(full[name].equal(t)) << name << " max diff " << (full[name] - t).abs().max().item<float>();
  }
}

TEST(Collectives, GatherReduceScatterAllReduce) {
  const int r = group().rank(), ws = group().world_size();
  at::Tensor in = at::full({3}, static_cast<float>(r));
  at::Tensor out = at::empty({3 * ws});
  group().all_gather_into(out, in);
  for (int k = 0; k < ws; ++k) EXPECT_EQ(out[3 * k].item<float>(), k);
  at::Tensor rs_in = at::arange(2 * ws).to(at::kFloat), rs_out = at::empty({2});
  group().reduce_scatter(rs_out, rs_in);
  EXPECT_EQ(rs_out[0].item<float>(), 2 * r * ws);
  at::Tensor m = at::full({1}, static_cast<float>(r));
  group().all_reduce(m, c10d::ReduceOp::MAX);
  EXPECT_EQ(m.item<float>(), ws - 1);
  // fp8 bytes travel as uint8 (Gloo has no float8 dtype)
  at::Tensor f8 = at::full({4}, 1.5f + r).to(at::kFloat8_e4m3fn), f8_out = at::empty({4 * ws}, at::kByte);
  group().all_gather_into(f8_out, f8.view(at::kByte));
  EXPECT_EQ(f8_out.view(at::kFloat8_e4m3fn).to(at::kFloat)[4 * (ws - 1)].item<float>(), 0.5f + ws);
}

TEST(FullyShard, Float8AllGatherMatchesUnsharded) { expect_parity({true, true, true, false, true}); }
TEST(FullyShard, Float8AllGatherKeptForBackward) { expect_parity({true, true, false, false, true}); }
TEST(FullyShard, Float8AllGatherWithPrecompute) { expect_parity({true, true, true, true, true}); }
TEST(FullyShard, Float8AllGatherKeptWithPrecompute) { expect_parity({true, true, false, true, true}); }
TEST(FullyShard, Float8WithHighPrecisionGather) { expect_parity({true, false, true, false, true}); }
TEST(FullyShard, PlainFp32) { expect_parity({false, false, true, false, true}); }
TEST(FullyShard, ReplicateIsDataParallel) { expect_parity({true, true, true, false, false}); }

TEST(FullyShard, OptimizerSeesShards) {
  Mlp m = make_mlp(true, true);
  shard(m, {});
  const int r = group().rank(), ws = group().world_size();
  for (const auto& item : m->named_parameters()) {
    const int64_t rows = item.key().rfind("2.", 0) == 0 ? 33 : item.key().rfind("0.", 0) == 0 ? 64 : 16;
    const int64_t per = (rows + ws - 1) / ws;
    const int64_t local = std::max<int64_t>(0, std::min(rows, (r + 1) * per) - r * per);
    EXPECT_EQ(item.value().size(0), local) << item.key();
  }
}

TEST(FullyShard, Fp8AllGatherBytes) {
  // One step, gathers kept for backward: one all-gather per layer, fp8 weights at 1 byte per
  // element of the padded weight, biases in float32.
  const int ws = group().world_size();
  auto padded = [&](int64_t n) { return (n + ws - 1) / ws * ws; };
  const int64_t weights = padded(64) * 32 + padded(33) * 64 + padded(16) * 33;
  const int64_t biases = padded(64) + padded(16);
  for (bool fp8 : {true, false}) {
    Mlp m = make_mlp(true, fp8);
    dist::FullyShardOptions o;
    o.reshard_after_forward = false;
    auto root = shard(m, o);
    root->forward([&] { return m->forward(batch(0)); }).sum().backward();
    int64_t gathered = 0, all_reduces = 0;
    for (auto& u : m->units) {
      gathered += u->comm_counters().all_gather_bytes;
      all_reduces += u->comm_counters().all_reduces;
    }
    EXPECT_EQ(gathered, fp8 ? weights * 1 + biases * 4 : weights * 4 + biases * 4);
    EXPECT_EQ(all_reduces, fp8 ? 3 : 0);  // the amax of each layer's fp8 weight
  }
}

// Each micro-batch's gradient is averaged over the ranks, then added to the shard's gradient: the
// same sum in another order than the reference's, so equal to float32 rounding.
TEST(FullyShard, GradientAccumulationOverMicroBatches) {
  Mlp ref = make_mlp(true, false);
  Mlp m = make_mlp(true, true);
  auto root = shard(m, {});
  for (int micro = 0; micro < 2; ++micro) {
    const at::Tensor x = batch(micro);
    root->forward([&] { return m->forward(x); }).square().mean().backward();
    ref->forward(x).square().mean().backward();
  }
  average_grads(*ref);
  const int r = group().rank(), ws = group().world_size();
  auto ref_params = ref->named_parameters();
  for (const auto& item : m->named_parameters()) {
    const at::Tensor& full_grad = ref_params[item.key()].grad();
    const int64_t per = (full_grad.size(0) + ws - 1) / ws;
    const int64_t begin = std::min(full_grad.size(0), r * per);
    const at::Tensor expected = full_grad.narrow(0, begin, item.value().size(0));
    EXPECT_TRUE(at::allclose(item.value().grad(), expected, 1e-5, 1e-7))
        << item.key() << " max diff " << (item.value().grad() - expected).abs().max().item<float>();
  }
}

TEST(FullyShard, ClipGradNormOfTheWholeModel) {
  Mlp ref = make_mlp(true, false);
  Mlp m = make_mlp(true, true);
  auto root = shard(m, {});
  const at::Tensor x = batch(0);
  root->forward([&] { return m->forward(x); }).square().mean().backward();
  ref->forward(x).square().mean().backward();
  average_grads(*ref);
  const double ref_norm = torch::nn::utils::clip_grad_norm_(ref->parameters(), 1e-3);
  const double norm = dist::clip_grad_norm_(*root, 1e-3);
  EXPECT_NEAR(norm, ref_norm, 1e-5 * ref_norm);
  const int r = group().rank(), ws = group().world_size();
  auto ref_params = ref->named_parameters();
  for (const auto& item : m->named_parameters()) {
    const at::Tensor& full_grad = ref_params[item.key()].grad();
    const int64_t per = (full_grad.size(0) + ws - 1) / ws;
    const at::Tensor expected = full_grad.narrow(0, std::min(full_grad.size(0), r * per), item.value().size(0));
    EXPECT_TRUE(at::allclose(item.value().grad(), expected, 1e-5, 1e-9)) << item.key();
  }
}

TEST(FullyShard, FullStateDictRoundTrip) {
  Mlp a = make_mlp(true, true);
  auto root_a = shard(a, {});
  torch::optim::SGD opt(a->parameters(), torch::optim::SGDOptions(0.1));
  root_a->forward([&] { return a->forward(batch(0)); }).sum().backward();
  opt.step();
  const auto full = dist::full_state_dict(*root_a);
  EXPECT_EQ(full["2.weight"].sizes(), (std::vector<int64_t>{33, 64}));
  Mlp b = make_mlp(true, true);
  auto root_b = shard(b, {});
  dist::load_full_state_dict(*root_b, full);
  const auto back = dist::full_state_dict(*root_b);
  for (const auto& item : full) EXPECT_TRUE(back[item.key()].equal(item.value())) << item.key();
  // a wrong shape is an error that changes nothing
  auto bad = full;
  bad["4.bias"] = at::zeros({5});
  EXPECT_THROW(dist::load_full_state_dict(*root_b, bad), c10::Error);
  EXPECT_TRUE(dist::full_state_dict(*root_b)["0.weight"].equal(full["0.weight"]));
}

TEST(FullyShard, FullStateDictFile) {
  Mlp a = make_mlp(true, true);
  auto root_a = shard(a, {});
  // ranks share the machine's temporary folder
  std::string path = ::testing::TempDir() + "/lowbit_fsdp_full.safetensors";
  dist::save_full_state_dict(*root_a, path, {{"step", "7"}});
  const auto contents = lowbit::io::load_safetensors(path);
  EXPECT_EQ(contents.metadata.at("step"), "7");
  EXPECT_EQ(contents.tensors.at("2.weight").sizes(), (std::vector<int64_t>{33, 64}));
  Mlp unsharded = make_mlp(true, false);  // same seed: the same values as before sharding
  for (const auto& item : unsharded->named_parameters()) {
    EXPECT_TRUE(contents.tensors.at(item.key()).equal(item.value())) << item.key();
  }
  Mlp b = make_mlp(false, false);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : b->parameters()) p.zero_();
  }
  auto root_b = shard(b, {});
  dist::load_full_state_dict(*root_b, path);
  const auto back = dist::full_state_dict(*root_b);
  for (const auto& [name, t] : contents.tensors) EXPECT_TRUE(back[name].equal(t)) << name;
  group().barrier();  // nobody rewrites the file while another rank still reads it
}

TEST(FullyShard, LowBitOptimizerStepsShards) {
  Mlp m = make_mlp(true, true);
  auto root = shard(m, {});
  lowbit::optim::AdamWLowBitOptions o = lowbit::optim::AdamW8bitOptions();
  o.lr(1e-2).min_quantized_size(0).block_size(64);
  lowbit::optim::AdamW8bit opt(m->parameters(), o);
  const auto before = dist::full_state_dict(*root);
  for (int step = 0; step < 2; ++step) {
    root->forward([&] { return m->forward(batch(step)); }).square().mean().backward();
    opt.step();
    opt.zero_grad();
  }
  const auto after = dist::full_state_dict(*root);
  for (const auto& item : before) EXPECT_FALSE(after[item.key()].equal(item.value())) << item.key();
}

// Python parity: tests/python/test_fsdp_cpp_parity.py writes the initial weights and each rank's
// batches, runs the same steps with torch FSDP2, and compares with what this test writes.
TEST(PythonParity, SameModelSameSteps) {
  const char* dir = std::getenv("LOWBIT_FSDP_PARITY_DIR");
  if (dir == nullptr) GTEST_SKIP() << "LOWBIT_FSDP_PARITY_DIR not set (run by test_fsdp_cpp_parity.py)";
  const std::string d(dir);
  const int r = group().rank();
  Mlp m = make_mlp(true, true);
  {
    const auto init = lowbit::io::load_safetensors(d + "/init.safetensors");
    torch::NoGradGuard no_grad;
    for (auto& item : m->named_parameters()) item.value().copy_(init.tensors.at(item.key()));
  }
  auto root = shard(m, {});
  const auto batches = lowbit::io::load_safetensors(d + "/batches_rank" + std::to_string(r) + ".safetensors");
  const at::Tensor xs = batches.tensors.at("x");
  const double lr = batches.tensors.at("lr").item<double>();
  torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(lr));
  std::vector<float> losses;
  for (int64_t step = 0; step < xs.size(0); ++step) {
    at::Tensor loss = root->forward([&] { return m->forward(xs[step]); }).square().mean();
    loss.backward();
    opt.step();
    opt.zero_grad();
    dist::precompute_float8_dynamic_scale(*root);
    losses.push_back(loss.item<float>());
  }
  std::map<std::string, at::Tensor> out;
  for (const auto& item : dist::full_state_dict(*root)) out[item.key()] = item.value();
  out["losses"] = at::tensor(losses);
  lowbit::io::save_safetensors(d + "/cpp_rank" + std::to_string(r) + ".safetensors", out);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dist::ProcessGroupOptions o;
  o.backend = "gloo";
  o.timeout = std::chrono::seconds(120);
  dist::ProcessGroup group = dist::init_process_group(o);
  g_group = &group;
  const int rc = RUN_ALL_TESTS();
  return rc;
}
