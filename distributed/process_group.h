// lowbit::distributed::ProcessGroup — a c10d process group (torch.distributed's engine, from C++):
// rendezvous through c10d::TCPStore from torchrun's environment, Gloo for CPU tensors, NCCL for
// CUDA tensors, and collectives that wait at most the group's timeout (an error, never a hang).
//
//   torchrun --nproc_per_node=2 --no-python ./my_trainer
//   auto group = lowbit::distributed::init_process_group();   // reads RANK, WORLD_SIZE, ...
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace lowbit::distributed {

struct ProcessGroupOptions {
  // "auto": Gloo for CPU tensors, plus NCCL for CUDA tensors when lowbit was built with NCCL and a
  // GPU is present (NCCL makes GPU LOCAL_RANK the current device); "gloo": Gloo only; "nccl": NCCL only (CUDA tensors). A backend lowbit was built
  // without is an error naming the CMake option (LOWBIT_GLOO, LOWBIT_NCCL).
  std::string backend = "auto";
  // Rendezvous (every rank must arrive within it) and every collective.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  // Explicit values override torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
  // MASTER_PORT); each one left unset must be in the environment.
  std::optional<int> rank, world_size, local_rank;
  std::optional<std::string> master_addr;
  std::optional<int> master_port;
};

class ProcessGroup {
 public:
  ProcessGroup(c10::intrusive_ptr<c10d::ProcessGroup> group, int local_rank, std::chrono::milliseconds timeout,
               std::string backend);

  int rank() const { return group_->getRank(); }
  int world_size() const { return group_->getSize(); }
  int local_rank() const { return local_rank_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // "gloo", "nccl" or "gloo+nccl" (CPU tensors on Gloo, CUDA tensors on NCCL).
  const std::string& backend() const { return backend_; }
  const c10::intrusive_ptr<c10d::ProcessGroup>& c10d_group() const { return group_; }

  // Collectives on tensors of one device; each returns when done, or throws after timeout().
  void all_reduce(at::Tensor& tensor, c10d::ReduceOp::RedOpType op = c10d::ReduceOp::SUM);
  // out (world_size * in.numel() elements, contiguous) = every rank's `in`, in rank order.
  void all_gather_into(at::Tensor& out, const at::Tensor& in);
  // out (in.numel() / world_size elements) = this rank's chunk of `in` reduced over the ranks.
  void reduce_scatter(at::Tensor& out, const at::Tensor& in, c10d::ReduceOp::RedOpType op = c10d::ReduceOp::SUM);
  void broadcast(at::Tensor& tensor, int root = 0);
  void barrier();

 private:
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what);

  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  int local_rank_;
  std::chrono::milliseconds timeout_;
  std::string backend_;
};

// Joins the job's process group: rank 0 (or torchrun's agent) hosts a c10d::TCPStore at
// MASTER_ADDR:MASTER_PORT, every rank checks in, then the backends connect. A missing or malformed
// variable is an error naming it; fewer ranks than WORLD_SIZE within the timeout is an error saying
// how many arrived.
ProcessGroup init_process_group(const ProcessGroupOptions& options = {});

// Whether this build of lowbit has the backend ("gloo" or "nccl").
bool backend_available(const std::string& backend);

}  // namespace lowbit::distributed
