#include <lowbit/core/device.h>

#include <lowbit/build_config.h>

#include <utility>

namespace lowbit::cuda {
// csrc/cuda/device_info.cpp (CUDA builds only): (major, minor) compute capability of GPU `index`.
std::pair<int, int> compute_capability(int index);
}  // namespace lowbit::cuda

namespace lowbit::core {

bool has_fp8_gemm(const c10::Device& device) {
  if (!device.is_cuda()) return false;
#if LOWBIT_WITH_CUDA
  const auto [major, minor] = cuda::compute_capability(device.has_index() ? device.index() : -1);
  return major > 8 || (major == 8 && minor >= 9);
#else
  return false;
#endif
}

}  // namespace lowbit::core
