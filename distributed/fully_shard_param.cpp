#include "fully_shard_param.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include <algorithm>

#include <lowbit/core/float8_scale.h>

namespace lowbit::distributed {

std::vector<int64_t> FullyShardedModule::Param::padded_full_sizes() const {
  std::vector<int64_t> s = full_sizes;
  s[0] = world_size * rows_per_rank;
  return s;
}

void FullyShardedModule::Param::fill_gather_input(const at::Tensor& dst, const at::Tensor& scale) {
  // Sharded: `param` holds this rank's rows (whatever tensor the module or .to() put there).
  shard = param.detach();
  dst.zero_();
  if (local_rows == 0) return;
  at::Tensor rows_bytes;
  if (fp8) {
    rows_bytes = core::cast_to_float8_with_scale(shard, scale, at::kFloat8_e4m3fn).view(at::kByte).reshape({-1});
  } else {
    rows_bytes = shard.contiguous().view({-1}).view(at::kByte);
  }
  dst.narrow(0, 0, rows_bytes.numel()).copy_(rows_bytes);
}

void FullyShardedModule::Param::fill_reduce_input(const at::Tensor& dst) const {
  const at::Tensor& g = param.grad();
  if (!g.defined()) return;  // no gradient here: contributes zeros
  TORCH_CHECK(g.dim() >= 1 && g.size(0) == rows, "lowbit::distributed: gradient of '", name, "' has shape ",
              g.sizes(), ", expected ", c10::IntArrayRef(full_sizes));
  const int64_t segments = dst.size(0);
  std::vector<int64_t> padded = full_sizes;
  padded[0] = segments * rows_per_rank;
  at::Tensor full = at::zeros(padded, dst.options());
  full.narrow(0, 0, rows).copy_(g);
  dst.copy_(full.view({segments, -1}));
}

at::Tensor FullyShardedModule::Param::shard_of(const at::Tensor& segment) const {
  std::vector<int64_t> s = full_sizes;
  s[0] = rows_per_rank;
  return segment.view(s).narrow(0, 0, local_rows).clone();
}

namespace detail {

std::unique_ptr<FullyShardedModule::Param> make_sharded_param(const std::string& name, at::Tensor tensor,
                                                              const ProcessGroup& group, bool shard,
                                                              std::shared_ptr<float8::Float8LinearMethod> fp8) {
  TORCH_CHECK(tensor.dim() >= 1, "lowbit::distributed::fully_shard: parameter '", name,
              "' is a 0-dim tensor; dim-0 sharding needs at least 1 dim (make it shape (1,))");
  auto p = std::make_unique<FullyShardedModule::Param>();
  p->name = name;
  p->param = tensor;
  p->full_sizes = tensor.sizes().vec();
  p->rows = tensor.size(0);
  p->row_numel = p->rows == 0 ? 0 : tensor.numel() / p->rows;
  if (p->row_numel == 0) {
    p->row_numel = 1;
    for (size_t d = 1; d < p->full_sizes.size(); ++d) p->row_numel *= p->full_sizes[d];
  }
  const int64_t ws = group.world_size(), rank = group.rank();
  p->world_size = shard ? ws : 1;
  if (shard) {
    p->rows_per_rank = (p->rows + ws - 1) / ws;
    const int64_t begin = std::min(p->rows, rank * p->rows_per_rank);
    p->local_rows = std::min(p->rows, begin + p->rows_per_rank) - begin;
    // This rank's rows, as an owning tensor (the full one is freed).
    tensor.set_data(tensor.detach().narrow(0, begin, p->local_rows).clone());
  } else {
    p->rows_per_rank = p->rows;
    p->local_rows = p->rows;
  }
  p->shard = tensor.detach();
  if (fp8) {
    TORCH_CHECK(tensor.dim() == 2, "lowbit::distributed::fully_shard: float8 weight '", name, "' must be 2-D");
    const int64_t cols = p->full_sizes[1];
    p->fp8 = std::move(fp8);
    p->fp8_full = at::empty({ws * p->rows_per_rank, cols}, tensor.options().dtype(at::kFloat8_e4m3fn));
    p->fp8_scale = at::zeros({}, tensor.options().dtype(at::kFloat));
    p->placeholder = at::zeros({}, tensor.options()).expand(p->full_sizes);
  }
  return p;
}

}  // namespace detail
}  // namespace lowbit::distributed
