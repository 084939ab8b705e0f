// lowbit::core::pack_uintx / unpack_uintx — dense bit packing (see core/bitstream.h).
#pragma once

#include <ATen/core/Tensor.h>

namespace lowbit::core {

// Packs uint8 codes, each < 2^bits (bits 1..8), in flat (row-major) order into a 1-D uint8
// tensor of ceil(numel*bits/8) bytes: int4 two per byte, fp6 four per three bytes.
at::Tensor pack_uintx(const at::Tensor& codes, int64_t bits);

// Inverse of pack_uintx: the first `numel` codes of the packed stream, as a 1-D uint8 tensor.
at::Tensor unpack_uintx(const at::Tensor& packed, int64_t bits, int64_t numel);

// Row-packed matrices, the layout of lowbit's bit-packed weights: codes (N, K) -> packed
// (N, K * bits / 8), each row byte-aligned (K * bits must be a multiple of 8), and back.
at::Tensor pack_uintx_rows(const at::Tensor& codes, int64_t bits);
at::Tensor unpack_uintx_rows(const at::Tensor& packed, int64_t bits);

}  // namespace lowbit::core
