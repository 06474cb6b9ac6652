"""Transformer pieces of the MRT2 depthformer: primer-hybrid norms (pre- and post-RMSNorm inside
each residual), windowed attention with a learned per-dimension query scale and attention sinks,
and a non-gated tanh-GELU feed-forward. No positional encoding (NoPE), so attention is invariant to
the order of cached keys and a ring buffer can hold them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NEG_INF = -1e9
R_SOFTPLUS_0 = 1.442695041  # 1 / softplus(0): a zero per-dim scale means the plain 1/sqrt(d)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one fused kernel on CUDA; it accumulates in float32 for half-precision inputs
        return F.rms_norm(x, (x.shape[-1],), self.scale.to(x.dtype), self.eps)


def additive_mask(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask (True: the key is seen) as the additive one Attention.stream takes: 0 where
    seen, -inf elsewhere, in `dtype` (the fused attention runs faster with it than with a bool)."""
    return torch.where(visible, 0.0, float("-inf")).to(dtype)


class Attention(nn.Module):
    """Multi-head attention from `x` to `source` (itself for self-attention) with optional sinks.

    Sink logits use the unscaled query (as the official layers do); the softmax runs in float32.
    Masks: `attend` (teacher forcing) takes a bool mask, `stream` an additive one (0 / -inf).
    """

    def __init__(self, d_model: int, d_source: int, num_heads: int, head_dim: int, num_sinks: int):
        super().__init__()
        self.h, self.hd = num_heads, head_dim
        inner = num_heads * head_dim
        self.q = nn.Linear(d_model, inner, bias=False)
        self.k = nn.Linear(d_source, inner, bias=False)
        self.v = nn.Linear(d_source, inner, bias=False)
        self.out = nn.Linear(inner, d_model, bias=False)
        self.per_dim_scale = nn.Parameter(torch.zeros(head_dim))
        self.sink_k = nn.Parameter(torch.zeros(num_sinks, num_heads, head_dim)) if num_sinks else None
        self.sink_v = nn.Parameter(torch.zeros(num_sinks, num_heads, head_dim)) if num_sinks else None

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, H*hd] -> [B, H, T, hd]."""
        return x.unflatten(-1, (self.h, self.hd)).transpose(1, 2)

    def project(self, h: torch.Tensor, source: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Queries from h, keys and values from `source` (h itself when None), each [B, H, T, hd].
        One matmul for all three (self-attention) or for keys and values (cross-attention) where
        linears.fuse_projections built `qkv` / `kv`."""
        qkv, kv = getattr(self, "qkv", None), getattr(self, "kv", None)
        if source is None and qkv is not None:
            return tuple(map(self.split, qkv(h).chunk(3, dim=-1)))
        src = h if source is None else source
        k, v = kv(src).chunk(2, dim=-1) if kv is not None else (self.k(src), self.v(src))
        return self.split(self.q(h)), self.split(k), self.split(v)

    def query_scale(self) -> torch.Tensor:
        """The learned per-dimension query scale, float32 [hd]."""
        return (R_SOFTPLUS_0 / math.sqrt(self.hd)) * F.softplus(self.per_dim_scale.float())

    def sink_entries(self, q_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The sinks as cache entries for `stream`, float32 [H, sinks, hd]: keys divided by the
        query scale (`stream` scales the query, and sink logits use the unscaled one)."""
        if self.sink_k is None:
            return None
        return (self.sink_k.float() / q_scale).transpose(0, 1), self.sink_v.float().transpose(0, 1)

    def merge(self, o: torch.Tensor) -> torch.Tensor:
        """[B, H, T, hd] heads -> the output projection's [B, T, D]."""
        return self.out(o.transpose(1, 2).flatten(-2))

    def stream(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, visible: torch.Tensor,
               q_scale: torch.Tensor) -> torch.Tensor:
        """One step's queries q [B, H, 1, hd] against a cache k, v [B, H, S, hd] that holds the
        sinks (see `sink_entries`) in slots that `visible` (an additive mask in the cache's dtype,
        0 where a key is seen and -inf elsewhere, broadcastable to [B, H, 1, S]) always shows;
        `q_scale` = query_scale() in the cache's dtype. One fused attention call, softmax in the
        cache's dtype (float32 on CPU), no copy of the cache. Returns [B, H, 1, hd] in the cache's
        dtype."""
        return F.scaled_dot_product_attention(q.to(k.dtype) * q_scale, k, v, attn_mask=visible, scale=1.0)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               visible: torch.Tensor) -> torch.Tensor:
        """q [B, H, Tq, hd]; k, v [B, H, Tk, hd]; visible bool broadcastable to [B, H, Tq, Tk]."""
        logits = (q * self.query_scale().to(q.dtype)) @ k.transpose(-1, -2)
        logits = logits.float().masked_fill(~visible, NEG_INF)
        if self.sink_k is not None:
            sink_logits = torch.einsum("bhqd,shd->bhqs", q, self.sink_k.to(q.dtype)).float()
            logits = torch.cat([sink_logits, logits], dim=-1)
            sink_v = self.sink_v.to(v.dtype).permute(1, 0, 2).expand(v.shape[0], -1, -1, -1)
            v = torch.cat([sink_v, v], dim=2)
        return torch.softmax(logits, dim=-1).to(v.dtype) @ v


class AttentionBlock(nn.Module):
    """x + post_norm(attention(pre_norm(x), source))."""

    def __init__(self, d_model: int, d_source: int, num_heads: int, head_dim: int, num_sinks: int):
        super().__init__()
        self.pre_norm = RMSNorm(d_model)
        self.attn = Attention(d_model, d_source, num_heads, head_dim, num_sinks)
        self.post_norm = RMSNorm(d_model)

    def over(self, x: torch.Tensor, source: torch.Tensor | None, visible: torch.Tensor) -> torch.Tensor:
        """The whole sequence at once (teacher forcing): attend to `source`, or to `x` itself."""
        q, k, v = self.attn.project(self.pre_norm(x), source)
        return x + self.post_norm(self.attn.merge(self.attn.attend(q, k, v, visible)))

    def step(self, x: torch.Tensor, source: torch.Tensor | None, k_cache: torch.Tensor,
             v_cache: torch.Tensor, slot: torch.Tensor, visible: torch.Tensor,
             q_scale: torch.Tensor) -> torch.Tensor:
        """One streaming step of x [B, 1, D]: this step's key and value go into the caches
        [B, H, S, hd] at `slot` (a 1-element index tensor), then the query attends over the
        caches (see Attention.stream)."""
        q, k, v = self.attn.project(self.pre_norm(x), source)
        k_cache.index_copy_(2, slot, k.to(k_cache.dtype))
        v_cache.index_copy_(2, slot, v.to(v_cache.dtype))
        o = self.attn.stream(q, k_cache, v_cache, visible, q_scale)
        return x + self.post_norm(self.attn.merge(o.to(x.dtype)))


class FeedForward(nn.Module):
    """x + post_norm(W2 gelu_tanh(W1 pre_norm(x)))."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.pre_norm = RMSNorm(d_model)
        self.w1 = nn.Linear(d_model, d_ff)
        self.act = nn.GELU(approximate="tanh")   # an Identity where w1 applies it (linears.py)
        self.w2 = nn.Linear(d_ff, d_model)
        self.post_norm = RMSNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.post_norm(self.w2(self.act(self.w1(self.pre_norm(x)))))


class Layer(nn.Module):
    """Self-attention, optional cross-attention to the encoder, feed-forward."""

    def __init__(self, d_model: int, d_ff: int, num_heads: int, head_dim: int, num_sinks: int,
                 d_source: int | None):
        super().__init__()
        self.self_attn = AttentionBlock(d_model, d_model, num_heads, head_dim, num_sinks)
        self.cross_attn = (AttentionBlock(d_model, d_source, num_heads, head_dim, num_sinks)
                           if d_source else None)
        self.ffn = FeedForward(d_model, d_ff)


def banded(tq: int, tk: int, past: int, device=None) -> torch.Tensor:
    """[Tq, Tk] bool: query i sees keys i-past .. i (queries and keys aligned in time)."""
    i = torch.arange(tq, device=device)[:, None]
    j = torch.arange(tk, device=device)[None, :]
    return (j <= i) & (j >= i - past)
