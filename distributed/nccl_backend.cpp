// The NCCL backend: torch's ProcessGroupNCCL (compiled into libtorch_cuda) built from C++. Its
// header needs nccl.h, which the nvidia-nccl pip package torch depends on provides (CMake finds it).
#include <lowbit/build_config.h>

#include "backends.h"

#if LOWBIT_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/Exception.h>

namespace lowbit::distributed::detail {

#if LOWBIT_WITH_NCCL

bool nccl_available() { return true; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, int local_rank) {
  const int devices = c10::cuda::device_count();
  TORCH_CHECK(devices > 0, "lowbit::distributed: backend NCCL needs a CUDA device; this process sees none");
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank % devices));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

#else

bool nccl_available() { return false; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                    std::chrono::milliseconds, int) {
  TORCH_CHECK(false, "lowbit::distributed: this build of lowbit has no NCCL backend (CUDA tensors); it needs a CUDA "
              "build (-DLOWBIT_CUDA=ON) with -DLOWBIT_NCCL=ON and nccl.h (pip install nvidia-nccl-cu13); use backend "
              "\"gloo\" with CPU tensors");
}

#endif

}  // namespace lowbit::distributed::detail
