// Element -> block maps for the affine CUDA kernels, and how a kernel picks one.
//
// The general map is core::BlockIndexer (a div/mod per dim per element). The common layouts,
// per-tensor, per-row and per-group of G along the last dim, cut the row-major input into
// contiguous runs of equal length, and there the block is just i / run_length.
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <limits>

#include <lowbit/core/affine_quant.h>

namespace lowbit::cuda {

// Blocks that are contiguous runs of `numel` elements; 32-bit division (inputs < 2^32 elements).
struct ContiguousBlocks {
  uint32_t numel;
  __device__ __forceinline__ int64_t block_of(int64_t i) const {
    return static_cast<int64_t>(static_cast<uint32_t>(i) / numel);
  }
};

// The run length of contiguous blocks: core::contiguous_block_numel (shared with the CPU kernels).
using core::contiguous_block_numel;

// Calls f(blocks) with ContiguousBlocks where the layout allows it, else with the BlockIndexer.
template <typename F>
void with_block_map(c10::IntArrayRef sizes, c10::IntArrayRef block_size, const core::BlockIndexer& ix,
                    int64_t numel, F&& f) {
  const int64_t run = contiguous_block_numel(sizes, block_size);
  if (run > 0 && numel <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
    f(ContiguousBlocks{static_cast<uint32_t>(run)});
  } else {
    f(ix);
  }
}

}  // namespace lowbit::cuda
