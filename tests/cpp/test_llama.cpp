// The recipes' data pipeline and the C++ Llama: deterministic split and batches, causality,
// rotary embeddings as rotations, RMSNorm, GQA shapes. (Parity with the Python face:
// tests/python/test_llama_parity.py.)
#include <gtest/gtest.h>

#include <lowbit/recipes/data.h>
#include <lowbit/recipes/llama.h>

#include <ATen/ops/allclose.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <torch/utils.h>

#include <filesystem>

namespace {

using namespace lowbit::recipes;

LlamaConfig small_config() {
  LlamaConfig c;
  c.vocab_size = 256;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.hidden_dim = 96;
  c.max_seq_len = 32;
  return c;
}

TEST(RecipeData, FortunesSplitAndBatchesAreDeterministic) {
  if (!std::filesystem::is_directory("/usr/share/games/fortunes")) GTEST_SKIP() << "fortunes not installed";
  const auto fortunes = load_fortunes();
  // The same numbers tests/python/test_llama.py asserts for the Python face (Debian's fortunes
  // 1:1.99.1); another fortunes release changes them, so only check them on this one.
  if (fortunes.size() != 15217u) GTEST_SKIP() << "a different fortunes release (" << fortunes.size() << " fortunes)";
  const TextSplit split = split_fortunes(fortunes, 10);
  EXPECT_EQ(split.train.numel(), 2300304);
  EXPECT_EQ(split.val.numel(), 261155);
  EXPECT_EQ(split.train.sum().item<int64_t>(), 200710862);
  EXPECT_EQ(split.val.sum().item<int64_t>(), 22790998);
  auto [x, y] = train_batch(split.train, 4, 16, 1234, 7);
  EXPECT_EQ(x.sum().item<int64_t>(), 5339);
  EXPECT_TRUE(at::equal(x.slice(1, 1, 16), y.slice(1, 0, 15)));  // targets are inputs shifted by one
  auto [x2, y2] = train_batch(split.train, 4, 16, 1234, 7);
  EXPECT_TRUE(at::equal(x, x2));
  auto [x3, y3] = train_batch(split.train, 4, 16, 1234, 8);
  EXPECT_FALSE(at::equal(x, x3));
  const auto val = val_batches(split.val, 4, 16, 3);
  ASSERT_EQ(val.size(), 3u);
  EXPECT_TRUE(at::equal(val[0].first[0], split.val.slice(0, 0, 16)));
  EXPECT_TRUE(at::equal(val[1].first[0], split.val.slice(0, 64, 80)));
}

TEST(RecipeData, ByteTokenizerRoundTrips) {
  const std::string text = "Hello, w\xc3\xb6rld!\n";
  const auto tokens = encode_bytes(text);
  EXPECT_EQ(tokens.size(), text.size());
  EXPECT_EQ(tokens[8], 0xc3);
  EXPECT_EQ(decode_bytes(tokens), text);
  EXPECT_THROW(decode_bytes({300}), c10::Error);
}

TEST(Llama, ShapesParameterCountAndCausality) {
  torch::manual_seed(0);
  const LlamaConfig c = small_config();
  Llama model(c);
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  EXPECT_EQ(n, c.num_parameters());
  EXPECT_EQ(model->layers[0]->as<TransformerBlockImpl>()->attention->wk->weight.size(0), 2 * 16);  // GQA
  const at::Tensor tokens = at::randint(256, {2, 12}, at::kLong);
  const at::Tensor logits = model->forward(tokens);
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{2, 12, 256}));
  // Changing token 7 leaves logits 0..6 unchanged and changes position 7.
  at::Tensor changed = tokens.clone();
  changed.index_put_({0, 7}, (tokens[0][7].item<int64_t>() + 1) % 256);
  const at::Tensor logits2 = model->forward(changed);
  EXPECT_TRUE(at::allclose(logits.slice(1, 0, 7), logits2.slice(1, 0, 7), 0, 1e-5));
  EXPECT_GT((logits[0][7] - logits2[0][7]).abs().max().item<float>(), 1e-3);
  EXPECT_THROW(model->forward(at::randint(256, {1, 33}, at::kLong)), c10::Error);
}

TEST(Llama, RotaryEmbeddingsRotateAndDependOnRelativePosition) {
  const int64_t hd = 16;
  auto [cos, sin] = rope_tables(20, hd, 10000.0);
  const at::Tensor q = at::randn({1, 1, 1, hd}), k = at::randn({1, 1, 1, hd});
  // The same vectors at every position: (1, 20, 1, hd).
  const at::Tensor qs = apply_rope(q.expand({1, 20, 1, hd}), cos, sin);
  const at::Tensor ks = apply_rope(k.expand({1, 20, 1, hd}), cos, sin);
  // A rotation keeps norms...
  EXPECT_TRUE(at::allclose(qs.norm(2, -1), q.norm().expand({1, 20, 1}), 1e-5, 1e-5));
  // ...and q_m . k_n depends on m - n only.
  const double a = (qs[0][5][0] * ks[0][2][0]).sum().item<double>();
  const double b = (qs[0][15][0] * ks[0][12][0]).sum().item<double>();
  EXPECT_NEAR(a, b, 1e-4);
  EXPECT_GT(std::abs(a - (qs[0][5][0] * ks[0][5][0]).sum().item<double>()), 1e-4);
}

TEST(Llama, RMSNormMatchesItsFormula) {
  RMSNorm norm(8, 1e-5);
  {
    torch::NoGradGuard g;
    norm->weight.copy_(at::randn({8}));
  }
  const at::Tensor x = at::randn({3, 8});
  const at::Tensor expected = x / (x.pow(2).mean(-1, true) + 1e-5).sqrt() * norm->weight;
  EXPECT_TRUE(at::allclose(norm->forward(x), expected, 1e-5, 1e-6));
}

TEST(Llama, ConfigChecks) {
  LlamaConfig c = small_config();
  c.n_kv_heads = 3;
  EXPECT_THROW(c.validate(), c10::Error);
  c = small_config();
  c.dim = 66;
  EXPECT_THROW(c.validate(), c10::Error);
}

}  // namespace
