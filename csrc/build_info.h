// What this copy of lowbit was built with.
#pragma once

#include <map>
#include <string>

namespace lowbit {

// The library version, e.g. "0.1.0".
std::string version();

// Build facts: "version", "cuda" ("ON"/"OFF"), "cuda_archs", "torch_version" (built against),
// "torch_cuda_version", and "cpu_kernels": the CPU kernels the ops run ("avx512", "avx2",
// "default" or "reference"; LOWBIT_CPU_KERNELS selects them, see README).
std::map<std::string, std::string> build_info();

}  // namespace lowbit
