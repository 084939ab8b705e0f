// lowbit::distributed in one process: rendezvous errors (missing or malformed torchrun variables,
// a WORLD_SIZE no other process joins) are clear errors within the timeout, never a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include <torch/cuda.h>

#include <lowbit/build_config.h>
#include <lowbit/distributed/fully_shard.h>
#include <lowbit/distributed/process_group.h>
#include <lowbit/float8/convert.h>
#include <lowbit/nn/linear.h>

#include "expect_error.h"

namespace {

using lowbit::distributed::init_process_group;
using lowbit::distributed::ProcessGroupOptions;

// Sets torchrun's variables for one test and restores the environment after it.
class TorchrunEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kNames) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (auto& [name, v] : saved_) {
      if (v) setenv(name, v->c_str(), 1);
      else unsetenv(name);
    }
  }
  static constexpr const char* kNames[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                                           "TORCHELASTIC_USE_AGENT_STORE"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

TEST_F(TorchrunEnv, MissingVariablesAreNamed) {
  setenv("RANK", "0", 1);
  expect_error([] { init_process_group(); }, "WORLD_SIZE, MASTER_PORT, MASTER_ADDR not set; launch with torchrun");
  setenv("WORLD_SIZE", "1", 1);
  setenv("MASTER_PORT", "29511", 1);
  expect_error([] { init_process_group(); }, "MASTER_ADDR not set");
}

TEST_F(TorchrunEnv, MalformedVariablesAreErrors) {
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", "29512", 1);
  setenv("WORLD_SIZE", "two", 1);
  setenv("RANK", "0", 1);
  expect_error([] { init_process_group(); }, "WORLD_SIZE='two' is not an integer");
  setenv("WORLD_SIZE", "2", 1);
  setenv("RANK", "2", 1);
  expect_error([] { init_process_group(); }, "RANK must be in [0, WORLD_SIZE=2), got 2");
  setenv("RANK", "0", 1);
  setenv("MASTER_PORT", "70000", 1);
  expect_error([] { init_process_group(); }, "MASTER_PORT must be in [1, 65535]");
  ProcessGroupOptions o;
  o.backend = "mpi";
  expect_error([&] { init_process_group(o); }, "unknown backend 'mpi'; allowed: 'auto', 'gloo', 'nccl'");
}

TEST_F(TorchrunEnv, WrongWorldSizeTimesOutWithACount) {
  ProcessGroupOptions o;
  o.rank = 0;
  o.world_size = 2;  // nobody else comes
  o.master_addr = "127.0.0.1";
  o.master_port = 29513;
  o.timeout = std::chrono::milliseconds(1500);
  const auto start = std::chrono::steady_clock::now();
  expect_error([&] { init_process_group(o); }, "only 1 of WORLD_SIZE=2 ranks reached the rendezvous");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST_F(TorchrunEnv, UnreachableStoreIsAnErrorWithinTheTimeout) {
  ProcessGroupOptions o;
  o.rank = 1;  // a client; no rank 0 hosts the store
  o.world_size = 2;
  o.master_addr = "127.0.0.1";
  o.master_port = 29514;
  o.timeout = std::chrono::milliseconds(1500);
  expect_error([&] { init_process_group(o); }, "could not reach the TCPStore at 127.0.0.1:29514");
}

TEST_F(TorchrunEnv, OneRankGroupWorks) {
  ProcessGroupOptions o;
  o.rank = 0;
  o.world_size = 1;
  o.master_addr = "127.0.0.1";
  o.master_port = 29515;
  o.timeout = std::chrono::seconds(30);
  if (!lowbit::distributed::backend_available("gloo")) {
    expect_error([&] { init_process_group(o); }, "LOWBIT_GLOO");
    return;
  }
  auto group = init_process_group(o);
  EXPECT_EQ(group.world_size(), 1);
  EXPECT_EQ(group.backend().rfind("gloo", 0), 0u);  // "gloo", or "gloo+nccl" on a GPU build
  at::Tensor t = at::ones({3});
  group.all_reduce(t, c10d::ReduceOp::SUM);
  EXPECT_TRUE(t.equal(at::ones({3})));
}

// One GPU: NCCL refuses two ranks on one device, so world size 1 exercises the NCCL backend, the
// sharded float8 unit (fp8 bytes through ncclAllGather) and the CUDA kernels of the scale ops.
TEST_F(TorchrunEnv, OneRankNcclGroupTrainsAShardedFloat8Layer) {
  if (!lowbit::distributed::backend_available("nccl") || !torch::cuda::is_available()) {
    GTEST_SKIP() << "needs a CUDA build with NCCL and a GPU";
  }
  ProcessGroupOptions o;
  o.backend = "nccl";
  o.rank = 0;
  o.world_size = 1;
  o.local_rank = 0;
  o.master_addr = "127.0.0.1";
  o.master_port = 29516;
  o.timeout = std::chrono::seconds(60);
  auto group = init_process_group(o);
  EXPECT_EQ(group.backend(), "nccl");
  at::Tensor t = at::ones({3}, at::kCUDA);
  group.all_reduce(t, c10d::ReduceOp::SUM);
  EXPECT_TRUE(t.cpu().equal(at::ones({3})));

  lowbit::float8::Float8LinearConfig c;
  c.emulate = true;  // any GPU
  c.enable_fsdp_float8_all_gather = true;
  torch::manual_seed(0);
  lowbit::nn::Linear sharded(64, 32), plain(64, 32);
  {
    torch::NoGradGuard no_grad;
    plain->weight.copy_(sharded->weight);
    plain->bias.copy_(sharded->bias);
  }
  sharded->to(at::kCUDA);
  plain->to(at::kCUDA);
  lowbit::float8::convert_to_float8_training(*sharded, c);
  c.enable_fsdp_float8_all_gather = false;
  lowbit::float8::convert_to_float8_training(*plain, c);
  auto unit = lowbit::distributed::fully_shard(*sharded, group);
  const at::Tensor x = at::randn({16, 64}, at::kCUDA);
  const at::Tensor y = unit->forward([&] { return sharded->forward(x); });
  const at::Tensor y_ref = plain->forward(x);
  EXPECT_TRUE(y.equal(y_ref));
  EXPECT_EQ(unit->comm_counters().all_gather_bytes, 64 * 32 + 32 * 4);  // fp8 weight + float32 bias
  y.square().sum().backward();
  y_ref.square().sum().backward();
  EXPECT_TRUE(sharded->weight.grad().equal(plain->weight.grad()));
}

TEST(DistributedBuild, BackendsMatchTheBuild) {
  EXPECT_EQ(lowbit::distributed::backend_available("gloo"), LOWBIT_WITH_GLOO == 1);
  EXPECT_EQ(lowbit::distributed::backend_available("nccl"), LOWBIT_WITH_NCCL == 1);
}

}  // namespace
