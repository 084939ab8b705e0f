// Device facts for csrc/core/device.h.
#include <ATen/cuda/CUDAContext.h>

#include <utility>

namespace lowbit::cuda {

std::pair<int, int> compute_capability(int index) {
  const cudaDeviceProp* p = index < 0 ? at::cuda::getCurrentDeviceProperties() : at::cuda::getDeviceProperties(index);
  return {p->major, p->minor};
}

}  // namespace lowbit::cuda
