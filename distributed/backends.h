// The c10d backends lowbit builds against (internal to lowbit::distributed): each is compiled
// only with its CMake option (LOWBIT_GLOO, LOWBIT_NCCL), and the stub of a missing one throws.
#pragma once

#include <c10/util/intrusive_ptr.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

namespace lowbit::distributed::detail {

// Gloo over TCP on the interface GLOO_SOCKET_IFNAME names, else loopback when every rank is on
// this machine (master_addr is a loopback address), else the address this host's name resolves to.
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, const std::string& master_addr);
bool gloo_available();

// Also makes GPU local_rank (modulo the GPUs this process sees) the current CUDA device.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, int local_rank);
bool nccl_available();

}  // namespace lowbit::distributed::detail
