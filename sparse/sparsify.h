// 2:4 sparse inference: sparsify_ prunes the weights of selected lowbit::nn::Linear layers to 2:4
// once and stores them compressed, as the quantized format "sparse24"
// (csrc/quant/formats/semi_sparse_weight.cpp), so quantize_'s machinery serves it: the same
// ConvertSummary, save_quantized / load_quantized, torch::save. torchao's sparsify_.
#pragma once

#include <lowbit/inference/quantize.h>
#include <lowbit/quant/config.h>

namespace lowbit::sparse {

// The 2:4 weight format: per-row 2:4 (the 2 largest magnitudes of every group of 4 along a row),
// parts values (N, K / 2) in the weight's dtype and meta uint8 (N, K / 8) (lowbit::core::compress_2_4).
// Layers whose in_features is not a multiple of 8 are skipped with that reason. Shorthand "sparse24".
using quant::SemiSparseWeightConfig;

// Prunes and compresses the weights of the selected layers (`filter`: by qualified name and layer;
// all when null) in place and returns what was converted and what was skipped and why.
// All-or-nothing as quantize_ (every weight compressed before any layer changes). `config` must be
// a sparsity config (SemiSparseWeightConfig); quantized formats go through inference::quantize_.
nn::ConvertSummary sparsify_(torch::nn::Module& model, const quant::QuantizeConfig& config = SemiSparseWeightConfig(),
                             nn::LinearFilter filter = nullptr);

}  // namespace lowbit::sparse
