#include <lowbit/build_info.h>

#include <lowbit/build_config.h>
#include <lowbit/cpu/vec/kernels.h>

namespace lowbit {

std::string version() { return LOWBIT_VERSION; }

std::map<std::string, std::string> build_info() {
  return {{"version", LOWBIT_VERSION},
          {"cuda", LOWBIT_WITH_CUDA ? "ON" : "OFF"},
          {"cuda_archs", LOWBIT_WITH_CUDA ? LOWBIT_CUDA_ARCHS : ""},
          {"torch_version", LOWBIT_TORCH_VERSION},
          {"torch_cuda_version", LOWBIT_TORCH_CUDA_VERSION},
          {"cpu_kernels", cpu::vec::kernel_set_name(cpu::vec::kernel_set())}};
}

}  // namespace lowbit
