// The fused GEMV (weight_only_gemv.cuh) for int8 weights.
#include "weight_only_gemv.cuh"

namespace lowbit::cuda::weight_only {
template void launch_gemv_for<Fmt::Int8>(const Problem& p, at::Tensor& y);
}  // namespace lowbit::cuda::weight_only
