"""A Llama-architecture language model on ``torch.nn.Linear``: RMSNorm, rotary embeddings
(rotate-half form), SwiGLU and grouped-query attention. The same architecture and parameter
names as the C++ face (recipes/llama.h), so weights move between them by name."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LlamaConfig:
    """Model shapes: the ``model.*`` keys of a recipe config (recipes/configs/model/*.yaml)."""

    vocab_size: int = 256
    dim: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    hidden_dim: int = 384
    max_seq_len: int = 256
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @classmethod
    def from_dict(cls, d: dict) -> "LlamaConfig":
        """From the ``model`` section of a config; unknown or missing keys are errors."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"LlamaConfig: unknown keys {sorted(unknown)}; allowed: {sorted(names)}")
        missing = names - set(d)
        if missing:
            raise ValueError(f"LlamaConfig: missing keys {sorted(missing)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """The C++ LlamaConfig's shape checks (one rule for both faces); ValueError if they fail."""
        from . import _native

        _native().validate_llama_config(self.__dict__)


def rope_tables(seq_len: int, head_dim: int, theta: float):
    """(cos, sin), each (seq_len, head_dim): angle(t, i) = t * theta^(-2i/head_dim), halves repeated."""
    i = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    inv_freq = torch.pow(theta, i).reciprocal()
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    full = torch.cat([angles, angles], -1)
    return full.cos(), full.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin for x: (batch, seq, heads, head_dim)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], -1)
    return x * cos[None, :, None, :] + rotated * sin[None, :, None, :]


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, in float32."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * (xf.pow(2).mean(-1, keepdim=True) + self.eps).rsqrt()).to(x.dtype) * self.weight


class Attention(nn.Module):
    """Causal grouped-query attention with rotary embeddings."""

    def __init__(self, c: LlamaConfig):
        super().__init__()
        self.c = c
        hd = c.head_dim
        self.wq = nn.Linear(c.dim, c.n_heads * hd, bias=False)
        self.wk = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(c.n_heads * hd, c.dim, bias=False)

    def forward(self, x, cos, sin, kv=None, start: int = 0):
        """``kv``: this layer's (keys, values) cache buffers, each (batch, n_kv_heads, max_seq_len,
        head_dim); the new keys and values are written at positions start.. and attention reads
        every cached position up to them (incremental decoding)."""
        b, t, _ = x.shape
        c, hd = self.c, self.c.head_dim
        q = apply_rope(self.wq(x).view(b, t, c.n_heads, hd), cos, sin).transpose(1, 2)
        k = apply_rope(self.wk(x).view(b, t, c.n_kv_heads, hd), cos, sin).transpose(1, 2)
        v = self.wv(x).view(b, t, c.n_kv_heads, hd).transpose(1, 2)
        mask, causal = None, t > 1
        if kv is not None:
            kv[0][:, :, start : start + t] = k
            kv[1][:, :, start : start + t] = v
            k, v = kv[0][:, :, : start + t], kv[1][:, :, : start + t]
            if start > 0 and t > 1:  # new queries see the whole cache and the causal part of the new block
                mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(start)
                causal = False
        # Each key/value head serves n_heads / n_kv_heads query heads: SDPA reads them in place
        # (enable_gqa) rather than through repeat_interleave copies of the whole cache per token.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           enable_gqa=c.n_heads != c.n_kv_heads)
        return self.wo(y.transpose(1, 2).contiguous().view(b, t, c.n_heads * hd))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, c: LlamaConfig):
        super().__init__()
        self.w1 = nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.w2 = nn.Linear(c.hidden_dim, c.dim, bias=False)
        self.w3 = nn.Linear(c.dim, c.hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm residual block: attention, then feed-forward."""

    def __init__(self, c: LlamaConfig):
        super().__init__()
        self.attention_norm = RMSNorm(c.dim, c.norm_eps)
        self.attention = Attention(c)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.feed_forward = FeedForward(c)

    def forward(self, x, cos, sin, kv=None, start: int = 0):
        h = x + self.attention(self.attention_norm(x), cos, sin, kv, start)
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    """tokens (batch, seq) int64 -> logits (batch, seq, vocab_size)."""

    def __init__(self, c: LlamaConfig):
        super().__init__()
        c.validate()
        self.config = c
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(TransformerBlock(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.output = nn.Linear(c.dim, c.vocab_size, bias=False)
        cos, sin = rope_tables(c.max_seq_len, c.head_dim, c.rope_theta)
        # Derived from the config: not saved in state_dicts (the C++ face keeps them out too).
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens: torch.Tensor, cache: "KVCache | None" = None, start: int = 0) -> torch.Tensor:
        """Logits of ``tokens`` at positions start..start+seq; with ``cache`` the keys and values of
        earlier positions come from it and this call's are added (see :func:`generate`)."""
        t = tokens.shape[1]
        if start + t > self.config.max_seq_len:
            raise ValueError(f"Llama: sequence length {start + t} exceeds max_seq_len {self.config.max_seq_len}")
        h = self.tok_embeddings(tokens)
        cos, sin = self.rope_cos[start : start + t], self.rope_sin[start : start + t]
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, None if cache is None else (cache.k[i], cache.v[i]), start)
        return self.output(self.norm(h))


class KVCache:
    """Keys and values of every layer for incremental decoding: (batch, n_kv_heads, max_seq_len,
    head_dim) buffers per layer, float32 (gpt-fast's static cache)."""

    def __init__(self, c: LlamaConfig, batch: int, device=None):
        shape = (batch, c.n_kv_heads, c.max_seq_len, c.head_dim)
        self.k = [torch.zeros(shape, device=device) for _ in range(c.n_layers)]
        self.v = [torch.zeros(shape, device=device) for _ in range(c.n_layers)]


@torch.inference_mode()
def generate(model: Llama, prompt: list[int], new_tokens: int, device=None) -> tuple[list[int], float]:
    """Greedy decoding with a KV cache: the prompt in one forward, then one token per forward (every
    linear sees M = 1 row: the memory-bound decode path). Returns (prompt + new tokens, decode tokens/s).

    The timed loop is the model and little else: no prefix is recomputed (the cache holds it), each
    next token stays a device tensor fed straight back (no host round trip per token), and autograd
    is off (inference_mode). The rest of the per-token cost is the forward's Python and small ops;
    benchmarks/bench_decode.py measures it against the linears alone."""
    c = model.config
    if len(prompt) + new_tokens > c.max_seq_len:
        raise ValueError(f"generate: {len(prompt)} prompt + {new_tokens} new tokens exceed max_seq_len {c.max_seq_len}")
    cache = KVCache(c, 1, device)
    logits = model(torch.tensor([prompt], device=device), cache, 0)
    out = []
    start = time.perf_counter()
    for i in range(new_tokens):
        token = logits[:, -1:].argmax(-1)  # (1, 1)
        out.append(token)
        logits = model(token, cache, len(prompt) + i)
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return list(prompt) + torch.cat(out, 1)[0].tolist(), new_tokens / seconds
