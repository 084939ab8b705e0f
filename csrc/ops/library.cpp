// The lowbit operator library. Every numeric transform of lowbit is an op in this namespace;
// each concept adds its schemas with TORCH_LIBRARY_FRAGMENT in its own file under csrc/ops/,
// its reference kernel under csrc/cpu/ and its fast kernel under csrc/cuda/.
#include <torch/library.h>

TORCH_LIBRARY(lowbit, m) {}
