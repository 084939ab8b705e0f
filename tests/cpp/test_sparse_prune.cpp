// lowbit::core::prune_2_4 from the C++ face: algorithm names, the tile and row rules' properties,
// ties, NaN, and errors (the Python tests compare the masks with an independent model of the rule).
#include <gtest/gtest.h>

#include <ATen/TensorOperators.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>
#include <limits>

#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/sparse_2_4.h>

#include "expect_error.h"

namespace {

using lowbit::core::prune_2_4;

// (rows, cols) -> (tiles, 4, 4)
at::Tensor tiles(const at::Tensor& t) {
  return t.reshape({t.size(0) / 4, 4, t.size(1) / 4, 4}).permute({0, 2, 1, 3}).reshape({-1, 4, 4});
}

TEST(Prune24, AlgorithmNamesRoundTrip) {
  using lowbit::core::PruneAlgorithm;
  for (auto a : {PruneAlgorithm::LargestAbs, PruneAlgorithm::Largest, PruneAlgorithm::LargestAbsRows})
    EXPECT_EQ(lowbit::core::parse_prune_algorithm(lowbit::core::prune_algorithm_name(a)), a);
  EXPECT_TRUE(lowbit::core::is_transposable(PruneAlgorithm::LargestAbs));
  EXPECT_FALSE(lowbit::core::is_transposable(PruneAlgorithm::LargestAbsRows));
  expect_error([] { lowbit::core::parse_prune_algorithm("topk"); }, "allowed: 'largest_abs', 'largest', 'largest_abs_rows'");
}

TEST(Prune24, TilesKeepAtMostTwoPerRowAndColumnAndValuesFollowTheMask) {
  at::manual_seed(0);
  for (const char* algo : {"largest_abs", "largest"}) {
    const at::Tensor x = at::randn({64, 96});
    auto [values, mask] = prune_2_4(x, algo);
    const at::Tensor t = tiles(mask).to(at::kInt);
    EXPECT_LE(t.sum(1).max().item<int>(), 2);
    EXPECT_LE(t.sum(2).max().item<int>(), 2);
    EXPECT_GE(t.sum({1, 2}).min().item<int>(), 7);  // greedy keeps 7 or 8 of every tile
    EXPECT_TRUE(at::equal(values, at::where(mask, x, at::zeros_like(x))));
  }
}

TEST(Prune24, RowsKeepTheTwoLargestMagnitudes) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({5, 32});
  auto [values, mask] = prune_2_4(x, "largest_abs_rows");
  EXPECT_TRUE(at::equal(mask.reshape({-1, 4}).sum(1), at::full({40}, 2, at::kLong)));
  const at::Tensor a = x.abs().reshape({-1, 4}), m = mask.reshape({-1, 4});
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE((at::where(m, a, inf).amin(1) >= at::where(m, -inf, a).amax(1)).all().item<bool>());
}

TEST(Prune24, TiesGoToTheEarlierPositionAndNaNRanksFirst) {
  auto [v, mask] = prune_2_4(at::ones({4, 4}));
  const at::Tensor expected =
      at::tensor({1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1}, at::kInt).reshape({4, 4}).to(at::kBool);
  EXPECT_TRUE(at::equal(mask, expected));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto [nv, nmask] = prune_2_4(at::tensor({1.0f, nan, 5.0f, -3.0f}).reshape({1, 4}), "largest_abs_rows");
  EXPECT_TRUE(at::equal(nmask, at::tensor({0, 1, 1, 0}, at::kInt).reshape({1, 4}).to(at::kBool)));
  EXPECT_TRUE(std::isnan(nv[0][1].item<float>()));
}

TEST(Prune24, ErrorsNameTheArgument) {
  expect_error([] { prune_2_4(at::zeros({4, 6})); }, "columns (6) must be a multiple of 4");
  expect_error([] { prune_2_4(at::zeros({6, 8})); }, "rows (6) must be a multiple of 4");
  expect_error([] { prune_2_4(at::zeros({4, 4}, at::kInt)); }, "is not supported");
  expect_error([] { prune_2_4(at::zeros({4})); }, "must be 2-D");
  expect_error([] { prune_2_4(at::zeros({4, 4}), "abs"); }, "unknown algorithm 'abs'");
}

}  // namespace

TEST(Compress24, RoundTripOfAPrunedWeightAndItsTranspose) {
  at::manual_seed(2);
  auto [pruned, mask] = prune_2_4(at::randn({32, 64}));
  auto [values, meta] = lowbit::core::compress_2_4(pruned);
  EXPECT_EQ(values.sizes(), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(meta.sizes(), (std::vector<int64_t>{32, 8}));
  EXPECT_TRUE(at::equal(lowbit::core::decompress_2_4(values, meta), pruned));
  auto [tv, tm] = lowbit::core::compress_2_4(pruned.t());
  EXPECT_TRUE(at::equal(lowbit::core::decompress_2_4(tv, tm), pruned.t()));
  expect_error([] { lowbit::core::compress_2_4(at::ones({2, 8})); }, "not 2:4 along its rows");
}
