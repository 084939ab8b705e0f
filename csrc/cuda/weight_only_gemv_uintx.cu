// The fused GEMV (weight_only_gemv.cuh) for uintx weights.
#include "weight_only_gemv.cuh"

namespace lowbit::cuda::weight_only {
template void launch_gemv_for<Fmt::Uintx>(const Problem& p, at::Tensor& y);
}  // namespace lowbit::cuda::weight_only
