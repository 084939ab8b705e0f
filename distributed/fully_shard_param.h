// One parameter of a fully_shard unit (internal to lowbit::distributed): its split over the ranks
// and the buffers its gathers and gradient reductions go through.
//
// Rows: dim 0 is split in chunks of rows_per_rank = ceil(rows / world_size) rows; rank r owns rows
// [r * rows_per_rank, min(rows, (r + 1) * rows_per_rank)) (possibly none). Collectives move every
// chunk padded to rows_per_rank rows, so all ranks send equal sizes.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include <lowbit/distributed/fully_shard.h>
#include <lowbit/float8/float8_linear_method.h>

namespace lowbit::distributed {

struct FullyShardedModule::Param {
  std::string name;
  at::Tensor param;                 // the module's tensor (identity kept; its data is swapped)
  at::Tensor shard;                 // this rank's rows while the parameter holds the gathered tensor
  std::vector<int64_t> full_sizes;  // the parameter's shape
  int64_t rows = 0, rows_per_rank = 0, local_rows = 0, row_numel = 0, world_size = 1;

  // fp8 all-gather (float8 linear weights with enable_fsdp_float8_all_gather)
  std::shared_ptr<float8::Float8LinearMethod> fp8;
  at::Tensor fp8_full;     // (world_size * rows_per_rank, K) e4m3: the gathered bytes; storage freed when sharded
  at::Tensor fp8_scale;    // () float32
  at::Tensor placeholder;  // zero-stride tensor of the full shape: the weight's autograd stand-in
  at::Tensor precomputed_amax;
  int64_t precomputed_version = -1;

  at::Tensor grad_stash;  // shard-shaped gradient from earlier backward passes (accumulation)
  bool grad_ready = false;

  int64_t shard_numel_padded() const { return rows_per_rank * row_numel; }
  // Bytes this parameter adds to the flat all-gather input.
  int64_t gather_bytes() const { return shard_numel_padded() * (fp8 ? 1 : param.element_size()); }
  std::vector<int64_t> padded_full_sizes() const;
  at::ScalarType grad_dtype() const { return param.scalar_type(); }
  // The data the parameter holds when sharded.
  at::Tensor shard_view() const { return shard; }

  // dst: gather_bytes() bytes. Plain: this rank's rows, zero-padded; fp8: the rows cast with `scale`.
  void fill_gather_input(const at::Tensor& dst, const at::Tensor& scale);
  // dst: (segments, shard_numel_padded()) of the gradient's dtype; segment s gets rows
  // [s * rows_per_rank, (s + 1) * rows_per_rank) of the accumulated full gradient (zeros if none).
  void fill_reduce_input(const at::Tensor& dst) const;
  // This rank's rows of a reduced (rows_per_rank * row_numel) segment, as an owning tensor.
  at::Tensor shard_of(const at::Tensor& segment) const;
};

namespace detail {
// Splits `tensor` (every rank holds the same full values) and keeps this rank's rows in it.
std::unique_ptr<FullyShardedModule::Param> make_sharded_param(const std::string& name, at::Tensor tensor,
                                                              const ProcessGroup& group, bool shard,
                                                              std::shared_ptr<float8::Float8LinearMethod> fp8);
}  // namespace detail

}  // namespace lowbit::distributed
