// A Llama-architecture language model on lowbit::nn::Linear: RMSNorm, rotary embeddings (rotate-half
// form), SwiGLU feed-forward and grouped-query attention. Every projection is a lowbit::nn::Linear,
// so float8 training, QAT and quantize_ convert it in place. Parameter names match the Python face
// (python/lowbit/recipes/llama.py): tok_embeddings, layers.N.attention.{wq,wk,wv,wo},
// layers.N.feed_forward.{w1,w2,w3}, layers.N.{attention_norm,ffn_norm}, norm, output.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <lowbit/nn/linear.h>

#include <cstdint>
#include <functional>
#include <string>

namespace lowbit::recipes {

class Config;

// Model shapes; `model.*` keys of a recipe config (recipes/configs/model/*.yaml).
struct LlamaConfig {
  int64_t vocab_size = 256;
  int64_t dim = 128;
  int64_t n_layers = 2;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 2;     // grouped-query attention: n_heads must be a multiple
  int64_t hidden_dim = 384;   // SwiGLU inner width
  int64_t max_seq_len = 256;
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;

  int64_t head_dim() const { return dim / n_heads; }
  // Reads model.vocab_size, model.dim, ... (all required); checks the shapes fit together.
  static LlamaConfig from_config(const Config& config, const std::string& prefix = "model");
  void validate() const;
  // Parameters of the model (embedding + blocks + norm + output).
  int64_t num_parameters() const;
};

// y = x / sqrt(mean(x^2) + eps) * weight, computed in float32.
class RMSNormImpl : public torch::nn::Cloneable<RMSNormImpl> {
 public:
  RMSNormImpl(int64_t dim, double eps);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  int64_t dim;
  double eps;
  at::Tensor weight;
};
TORCH_MODULE(RMSNorm);

class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  explicit AttentionImpl(const LlamaConfig& config);
  void reset() override;
  // x: (batch, seq, dim); cos / sin: (seq, head_dim) rotary tables.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
  LlamaConfig config;
  nn::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr};
};
TORCH_MODULE(Attention);

// w2(silu(w1 x) * w3 x)
class FeedForwardImpl : public torch::nn::Cloneable<FeedForwardImpl> {
 public:
  explicit FeedForwardImpl(const LlamaConfig& config);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  LlamaConfig config;
  nn::Linear w1{nullptr}, w2{nullptr}, w3{nullptr};
};
TORCH_MODULE(FeedForward);

class TransformerBlockImpl : public torch::nn::Cloneable<TransformerBlockImpl> {
 public:
  explicit TransformerBlockImpl(const LlamaConfig& config);
  void reset() override;
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
  LlamaConfig config;
  RMSNorm attention_norm{nullptr}, ffn_norm{nullptr};
  Attention attention{nullptr};
  FeedForward feed_forward{nullptr};
};
TORCH_MODULE(TransformerBlock);

class LlamaImpl : public torch::nn::Cloneable<LlamaImpl> {
 public:
  explicit LlamaImpl(const LlamaConfig& config);
  void reset() override;
  // tokens: (batch, seq) int64 -> logits (batch, seq, vocab_size), float32.
  at::Tensor forward(const at::Tensor& tokens);
  LlamaConfig config;
  // Runs block i's forward (the callable); distributed training sets it to run each block
  // through its fully_shard unit. Unset: blocks run directly.
  std::function<at::Tensor(size_t, const std::function<at::Tensor()>&)> block_runner;
  torch::nn::Embedding tok_embeddings{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  nn::Linear output{nullptr};
  at::Tensor rope_cos, rope_sin;  // (max_seq_len, head_dim) buffers
};
TORCH_MODULE(Llama);

// The rotary tables (cos, sin), each (seq_len, head_dim) float32: angle(t, i) = t * theta^(-2i/head_dim)
// for i < head_dim / 2, repeated for the second half (the rotate-half convention).
std::pair<at::Tensor, at::Tensor> rope_tables(int64_t seq_len, int64_t head_dim, double theta);

// x * cos + rotate_half(x) * sin for x: (batch, seq, heads, head_dim).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace lowbit::recipes
