#include <lowbit/distributed/process_group.h>

#include <c10/core/Device.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/cuda.h>

#include <cstdlib>
#include <sstream>
#include <thread>
#include <vector>

#include "backends.h"

namespace lowbit::distributed {
namespace {

constexpr const char* kWhere = "lowbit::distributed::init_process_group";

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int64_t parse_int(const std::string& name, const std::string& value) {
  size_t used = 0;
  int64_t out = 0;
  try {
    out = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TORCH_CHECK(used == value.size() && !value.empty(), kWhere, ": ", name, "='", value, "' is not an integer");
  return out;
}

// The rendezvous settings: explicit options first, then torchrun's environment.
struct Rendezvous {
  int rank, world_size, local_rank;
  std::string master_addr;
  int master_port;
};

Rendezvous read_rendezvous(const ProcessGroupOptions& o) {
  std::vector<std::string> missing;
  auto int_value = [&](const std::optional<int>& given, const char* name) -> int64_t {
    if (given) return *given;
    auto v = env(name);
    if (!v) {
      missing.push_back(name);
      return 0;
    }
    return parse_int(name, *v);
  };
  Rendezvous r{};
  const int64_t rank = int_value(o.rank, "RANK");
  const int64_t world = int_value(o.world_size, "WORLD_SIZE");
  const int64_t port = int_value(o.master_port, "MASTER_PORT");
  if (o.master_addr) {
    r.master_addr = *o.master_addr;
  } else if (auto v = env("MASTER_ADDR")) {
    r.master_addr = *v;
  } else {
    missing.push_back("MASTER_ADDR");
  }
  TORCH_CHECK(missing.empty(), kWhere, ": environment variable(s) ", c10::Join(", ", missing),
              " not set; launch with torchrun (torchrun --nproc_per_node=N --no-python <program>) or set RANK, "
              "WORLD_SIZE, MASTER_ADDR and MASTER_PORT (or ProcessGroupOptions' fields)");
  TORCH_CHECK(world >= 1, kWhere, ": WORLD_SIZE must be >= 1, got ", world);
  TORCH_CHECK(rank >= 0 && rank < world, kWhere, ": RANK must be in [0, WORLD_SIZE=", world, "), got ", rank);
  TORCH_CHECK(port != 0, kWhere, ": MASTER_PORT=0: torchrun --master_port=0 does not tell the workers which port "
              "it picked; use torchrun --standalone (or a fixed --master_port)");
  TORCH_CHECK(port > 0 && port < 65536, kWhere, ": MASTER_PORT must be in [1, 65535], got ", port);
  r.rank = static_cast<int>(rank);
  r.world_size = static_cast<int>(world);
  r.master_port = static_cast<int>(port);
  const int64_t local = o.local_rank ? *o.local_rank : (env("LOCAL_RANK") ? parse_int("LOCAL_RANK", *env("LOCAL_RANK")) : rank);
  TORCH_CHECK(local >= 0, kWhere, ": LOCAL_RANK must be >= 0, got ", local);
  r.local_rank = static_cast<int>(local);
  return r;
}

// Every rank adds itself to a counter and waits until all WORLD_SIZE ranks have: a wrong
// WORLD_SIZE (or a rank that never starts) ends in an error after the timeout, not a hang.
void check_in(c10d::Store& store, const Rendezvous& r, std::chrono::milliseconds timeout) {
  store.add("arrived", 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int64_t arrived = 0;
  while ((arrived = store.add("arrived", 0)) < r.world_size) {
    TORCH_CHECK(std::chrono::steady_clock::now() < deadline, kWhere, ": only ", arrived, " of WORLD_SIZE=",
                r.world_size, " ranks reached the rendezvous at ", r.master_addr, ":", r.master_port, " within ",
                timeout.count(), " ms; check that WORLD_SIZE matches the number of processes started");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  TORCH_CHECK(arrived == r.world_size, kWhere, ": ", arrived, " ranks joined a rendezvous for WORLD_SIZE=",
              r.world_size, " at ", r.master_addr, ":", r.master_port,
              "; another job shares this MASTER_PORT, or WORLD_SIZE differs between ranks");
}

c10::intrusive_ptr<c10d::Store> connect_store(const Rendezvous& r, std::chrono::milliseconds timeout) {
  // Under torchrun's elastic agent, the agent already hosts the store on MASTER_PORT: every rank
  // is a client (torch.distributed does the same).
  const bool agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(r.master_port);
  opts.isServer = r.rank == 0 && !agent_store;
  opts.numWorkers = std::nullopt;  // check_in counts ranks itself, with a clear error
  opts.waitWorkers = false;
  opts.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(r.master_addr, opts);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, kWhere, ": rank ", r.rank, " could not ", opts.isServer ? "host" : "reach",
                " the TCPStore at ", r.master_addr, ":", r.master_port, " within ", timeout.count(),
                " ms (is MASTER_ADDR/MASTER_PORT right, is rank 0 running?): ", e.what());
  }
  const std::string restarts = env("TORCHELASTIC_RESTART_COUNT").value_or("0");
  return c10::make_intrusive<c10d::PrefixStore>("lowbit/" + restarts + "/", store);
}

}  // namespace

bool backend_available(const std::string& backend) {
  if (backend == "gloo") return detail::gloo_available();
  if (backend == "nccl") return detail::nccl_available();
  return false;
}

ProcessGroup::ProcessGroup(c10::intrusive_ptr<c10d::ProcessGroup> group, int local_rank,
                           std::chrono::milliseconds timeout, std::string backend)
    : group_(std::move(group)), local_rank_(local_rank), timeout_(timeout), backend_(std::move(backend)) {}

void ProcessGroup::wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  bool done = false;
  try {
    done = work->wait(timeout_);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "lowbit::distributed: ", what, " failed on rank ", rank(), " of ", world_size(), ": ",
                e.what());
  }
  TORCH_CHECK(done, "lowbit::distributed: ", what, " did not finish within ", timeout_.count(), " ms on rank ",
              rank(), " of ", world_size(), " (a rank is missing or stuck)");
}

void ProcessGroup::all_reduce(at::Tensor& tensor, c10d::ReduceOp::RedOpType op) {
  std::vector<at::Tensor> ts{tensor};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp(op);
  o.timeout = timeout_;
  wait(group_->allreduce(ts, o), "all_reduce");
}

void ProcessGroup::all_gather_into(at::Tensor& out, const at::Tensor& in) {
  TORCH_CHECK(out.numel() == in.numel() * world_size(), "lowbit::distributed::all_gather_into: out has ",
              out.numel(), " elements, needs world_size * in.numel() = ", in.numel() * world_size());
  at::Tensor input = in.contiguous();
  c10d::AllgatherOptions o;
  o.timeout = timeout_;
  wait(group_->_allgather_base(out, input, o), "all_gather");
}

void ProcessGroup::reduce_scatter(at::Tensor& out, const at::Tensor& in, c10d::ReduceOp::RedOpType op) {
  TORCH_CHECK(in.numel() == out.numel() * world_size(), "lowbit::distributed::reduce_scatter: in has ", in.numel(),
              " elements, needs world_size * out.numel() = ", out.numel() * world_size());
  at::Tensor input = in.contiguous();
  c10d::ReduceScatterOptions o;
  o.reduceOp = c10d::ReduceOp(op);
  o.timeout = timeout_;
  wait(group_->_reduce_scatter_base(out, input, o), "reduce_scatter");
}

void ProcessGroup::broadcast(at::Tensor& tensor, int root) {
  std::vector<at::Tensor> ts{tensor};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = timeout_;
  wait(group_->broadcast(ts, o), "broadcast");
}

void ProcessGroup::barrier() {
  c10d::BarrierOptions o;
  o.timeout = timeout_;
  wait(group_->barrier(o), "barrier");
}

ProcessGroup init_process_group(const ProcessGroupOptions& options) {
  const std::string& b = options.backend;
  TORCH_CHECK(b == "auto" || b == "gloo" || b == "nccl", kWhere, ": unknown backend '", b,
              "'; allowed: 'auto', 'gloo', 'nccl'");
  TORCH_CHECK(options.timeout.count() > 0, kWhere, ": timeout must be positive");
  const Rendezvous r = read_rendezvous(options);
  const bool want_gloo = b == "gloo" || b == "auto";
  const bool want_nccl = b == "nccl" || (b == "auto" && detail::nccl_available() && torch::cuda::is_available());
  TORCH_CHECK(!(b == "auto" && !detail::gloo_available() && !want_nccl), kWhere,
              ": this build of lowbit has no Gloo backend and no usable NCCL backend; rebuild with -DLOWBIT_GLOO=ON "
              "(apt-get install libgloo-dev) or, on a GPU machine, -DLOWBIT_NCCL=ON");
  auto store = connect_store(r, options.timeout);
  check_in(*store, r, options.timeout);

  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, r.rank, r.world_size);
  std::string name;
  if (want_gloo && (b == "gloo" || detail::gloo_available())) {
    auto gloo = detail::make_gloo_backend(c10::make_intrusive<c10d::PrefixStore>("gloo/", store), r.rank,
                                          r.world_size, options.timeout, r.master_addr);
    group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    name = "gloo";
  }
  if (want_nccl) {
    auto nccl = detail::make_nccl_backend(c10::make_intrusive<c10d::PrefixStore>("nccl/", store), r.rank,
                                          r.world_size, options.timeout, r.local_rank);
    group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
    if (name.empty()) group->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
    name = name.empty() ? "nccl" : name + "+nccl";
  }
  return ProcessGroup(group, r.local_rank, options.timeout, name);
}

}  // namespace lowbit::distributed
