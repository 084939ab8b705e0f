// lowbit::core::compress_2_4 / decompress_2_4 — the portable 2:4 compressed format
// (core/sparse_2_4_format.h): kept values plus 4 bits of positions per group of 4.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace lowbit::core {

// x (rows, cols) with at most 2 nonzeros in every aligned group of 4 along its rows (prune_2_4's
// values, or their transpose for a tile algorithm); cols a multiple of 8. Returns (values, meta):
// values (rows, cols / 2) in x's dtype (float32, float64, bfloat16, float16 or int8), meta
// (rows, cols / 8) uint8. The CPU reference rejects a group with more than 2 nonzeros.
std::tuple<at::Tensor, at::Tensor> compress_2_4(const at::Tensor& x);

// The inverse: values (rows, cols / 2), meta (rows, cols / 8) -> (rows, cols), +0 where nothing is
// stored. decompress_2_4(compress_2_4(x)) == x bit for bit for every 2:4 x.
at::Tensor decompress_2_4(const at::Tensor& values, const at::Tensor& meta);

}  // namespace lowbit::core
