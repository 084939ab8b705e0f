// The Llama model. See llama.h.
#include <lowbit/recipes/llama.h>

#include <lowbit/recipes/config.h>

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/outer.h>
#include <ATen/ops/pow.h>
#include <ATen/ops/scaled_dot_product_attention.h>
#include <ATen/ops/silu.h>
#include <c10/util/Exception.h>

namespace lowbit::recipes {

LlamaConfig LlamaConfig::from_config(const Config& c, const std::string& p) {
  LlamaConfig m;
  m.vocab_size = c.get_int(p + ".vocab_size");
  m.dim = c.get_int(p + ".dim");
  m.n_layers = c.get_int(p + ".n_layers");
  m.n_heads = c.get_int(p + ".n_heads");
  m.n_kv_heads = c.get_int(p + ".n_kv_heads");
  m.hidden_dim = c.get_int(p + ".hidden_dim");
  m.max_seq_len = c.get_int(p + ".max_seq_len");
  m.norm_eps = c.get_float(p + ".norm_eps");
  m.rope_theta = c.get_float(p + ".rope_theta");
  m.validate();
  return m;
}

void LlamaConfig::validate() const {
  // Messages name the config keys (model.*): the recipe schema reports them as they are.
  TORCH_CHECK(vocab_size > 0 && dim > 0 && n_layers > 0 && hidden_dim > 0 && max_seq_len > 0,
              "model sizes must be positive (vocab_size, dim, n_layers, hidden_dim, max_seq_len)");
  TORCH_CHECK(n_heads > 0 && dim % n_heads == 0, "model.dim (", dim, ") must be a multiple of model.n_heads (",
              n_heads, ")");
  TORCH_CHECK(head_dim() % 2 == 0, "model.dim / model.n_heads (head_dim ", head_dim(),
              ") must be even for rotary embeddings");
  TORCH_CHECK(n_kv_heads > 0 && n_heads % n_kv_heads == 0, "model.n_heads (", n_heads,
              ") must be a multiple of model.n_kv_heads (", n_kv_heads, ")");
}

int64_t LlamaConfig::num_parameters() const {
  const int64_t kv = n_kv_heads * head_dim();
  const int64_t block = dim * (2 * dim + 2 * kv) + 3 * dim * hidden_dim + 2 * dim;
  return 2 * vocab_size * dim + n_layers * block + dim;
}

std::pair<at::Tensor, at::Tensor> rope_tables(int64_t seq_len, int64_t head_dim, double theta) {
  const at::Tensor i = at::arange(0, head_dim, 2, at::kFloat) / static_cast<double>(head_dim);
  const at::Tensor inv_freq = at::pow(theta, i).reciprocal();
  const at::Tensor angles = at::outer(at::arange(seq_len, at::kFloat), inv_freq);  // (seq, head_dim / 2)
  const at::Tensor full = at::cat({angles, angles}, -1);
  return {full.cos(), full.sin()};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  const at::Tensor rotated = at::cat({x2.neg(), x1}, -1);
  // cos / sin: (seq, head_dim) -> (1, seq, 1, head_dim)
  const at::Tensor c = cos.unsqueeze(0).unsqueeze(2), s = sin.unsqueeze(0).unsqueeze(2);
  return x * c + rotated * s;
}

RMSNormImpl::RMSNormImpl(int64_t dim_, double eps_) : dim(dim_), eps(eps_) { reset(); }

void RMSNormImpl::reset() { weight = register_parameter("weight", at::ones({dim})); }

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor normed = xf * (xf.pow(2).mean(-1, /*keepdim=*/true) + eps).rsqrt();
  return normed.to(x.scalar_type()) * weight;
}

namespace {
nn::Linear make_linear(int64_t in, int64_t out) {
  return nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}
}  // namespace

AttentionImpl::AttentionImpl(const LlamaConfig& c) : config(c) { reset(); }

void AttentionImpl::reset() {
  const int64_t hd = config.head_dim();
  wq = register_module("wq", make_linear(config.dim, config.n_heads * hd));
  wk = register_module("wk", make_linear(config.dim, config.n_kv_heads * hd));
  wv = register_module("wv", make_linear(config.dim, config.n_kv_heads * hd));
  wo = register_module("wo", make_linear(config.n_heads * hd, config.dim));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t b = x.size(0), t = x.size(1), hd = config.head_dim();
  at::Tensor q = wq->forward(x).view({b, t, config.n_heads, hd});
  at::Tensor k = wk->forward(x).view({b, t, config.n_kv_heads, hd});
  at::Tensor v = wv->forward(x).view({b, t, config.n_kv_heads, hd});
  q = apply_rope(q, cos, sin).transpose(1, 2);  // (b, heads, t, hd)
  k = apply_rope(k, cos, sin).transpose(1, 2);
  v = v.transpose(1, 2);
  // Grouped-query attention: each key/value head serves n_heads / n_kv_heads query heads.
  const int64_t rep = config.n_heads / config.n_kv_heads;
  if (rep > 1) {
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  const at::Tensor y = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                                        /*is_causal=*/true);
  return wo->forward(y.transpose(1, 2).contiguous().view({b, t, config.n_heads * hd}));
}

FeedForwardImpl::FeedForwardImpl(const LlamaConfig& c) : config(c) { reset(); }

void FeedForwardImpl::reset() {
  w1 = register_module("w1", make_linear(config.dim, config.hidden_dim));
  w2 = register_module("w2", make_linear(config.hidden_dim, config.dim));
  w3 = register_module("w3", make_linear(config.dim, config.hidden_dim));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) {
  return w2->forward(at::silu(w1->forward(x)) * w3->forward(x));
}

TransformerBlockImpl::TransformerBlockImpl(const LlamaConfig& c) : config(c) { reset(); }

void TransformerBlockImpl::reset() {
  attention_norm = register_module("attention_norm", RMSNorm(config.dim, config.norm_eps));
  attention = register_module("attention", Attention(config));
  ffn_norm = register_module("ffn_norm", RMSNorm(config.dim, config.norm_eps));
  feed_forward = register_module("feed_forward", FeedForward(config));
}

at::Tensor TransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const at::Tensor h = x + attention->forward(attention_norm->forward(x), cos, sin);
  return h + feed_forward->forward(ffn_norm->forward(h));
}

LlamaImpl::LlamaImpl(const LlamaConfig& c) : config(c) {
  config.validate();
  reset();
}

void LlamaImpl::reset() {
  tok_embeddings = register_module("tok_embeddings", torch::nn::Embedding(config.vocab_size, config.dim));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.n_layers; ++i) layers->push_back(TransformerBlock(config));
  norm = register_module("norm", RMSNorm(config.dim, config.norm_eps));
  output = register_module("output", make_linear(config.dim, config.vocab_size));
  auto [cos, sin] = rope_tables(config.max_seq_len, config.head_dim(), config.rope_theta);
  // Non-persistent in spirit: derived from the config, so they are not saved in checkpoints.
  rope_cos = cos;
  rope_sin = sin;
}

at::Tensor LlamaImpl::forward(const at::Tensor& tokens) {
  const int64_t t = tokens.size(1);
  TORCH_CHECK(t <= config.max_seq_len, "Llama: sequence length ", t, " exceeds max_seq_len ", config.max_seq_len);
  at::Tensor h = tok_embeddings->forward(tokens);
  const at::Tensor cos = rope_cos.narrow(0, 0, t).to(h.device()), sin = rope_sin.narrow(0, 0, t).to(h.device());
  for (const auto& layer : *layers) h = layer->as<TransformerBlockImpl>()->forward(h, cos, sin);
  return output->forward(norm->forward(h));
}

}  // namespace lowbit::recipes
