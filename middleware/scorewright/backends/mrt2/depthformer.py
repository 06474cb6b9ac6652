"""The MRT2 depthformer: a conditioning encoder, a temporal decoder over 40 ms frames (self-attention
over its own past, streaming cross-attention to the encoder), and a depth decoder over the 12 RVQ
levels of each frame. `forward` is the teacher-forced pass; `sampler.Sampler` streams it."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import NUM_RESERVED, MRT2Config
from .layers import Layer, banded


class CondEncoder(nn.Module):
    """144 conditioning tokens per frame -> one encoder vector per frame.

    MusicCoCa tokens go through the pretrained 768-d MusicCoCa dequantizer (summed over levels) and a
    projection; the other 132 channels share one embedding table (mean over channels); the two
    branches are averaged and layer-normalised. The encoder has no transformer layers.
    """

    def __init__(self, cfg: MRT2Config):
        super().__init__()
        self.cfg = cfg
        self.n_mc = cfg.cond_groups[0].channels
        self.mc_embed = nn.Embedding(cfg.musiccoca_vocab, cfg.musiccoca_dim)
        self.mc_proj = nn.Linear(cfg.musiccoca_dim, cfg.encoder_dim, bias=False)
        self.regular_embed = nn.Embedding(cfg.regular_vocab, cfg.encoder_dim)
        self.norm = nn.LayerNorm(cfg.encoder_dim, eps=1e-6)
        self.build_buffers()

    def build_buffers(self) -> None:
        """Id offsets per MusicCoCa level and per regular channel (derived from cfg; not stored in
        checkpoints, so the loader rebuilds them after assigning weights)."""
        mc = self.cfg.cond_groups[0]
        sizes = [g.vocab for g in self.cfg.regular_channels for _ in range(g.channels)]
        self.register_buffer("mc_offsets", torch.arange(mc.channels) * mc.vocab, persistent=False)
        self.register_buffer("regular_offsets", torch.tensor([0] + sizes[:-1]).cumsum(0), persistent=False)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        mc = self.mc_proj(self.mc_embed(cond[..., : self.n_mc] + self.mc_offsets).sum(-2))
        reg = self.regular_embed(cond[..., self.n_mc:] + self.regular_offsets)
        reg = reg.float().mean(-2).to(mc.dtype)
        return self.norm((mc + reg) / 2)


class Depthformer(nn.Module):
    def __init__(self, cfg: MRT2Config):
        super().__init__()
        self.cfg = cfg
        t, d = cfg.temporal, cfg.depth
        self.encoder = CondEncoder(cfg)
        self.embed = nn.Embedding(cfg.vocab, t.d_model)
        self.embed_scale = math.sqrt(t.d_model)
        self.temporal = nn.ModuleList(
            Layer(t.d_model, t.d_ff, t.num_heads, t.head_dim, cfg.num_sinks, cfg.encoder_dim)
            for _ in range(t.num_layers))
        same = t.d_model == d.d_model
        self.adapter = nn.Identity() if same else nn.Linear(t.d_model, d.d_model, bias=False)
        self.depth = nn.ModuleList(
            Layer(d.d_model, d.d_ff, d.num_heads, d.head_dim, 0, None) for _ in range(d.num_layers))
        self.final_norm = nn.LayerNorm(d.d_model, eps=1e-6)
        self.to_logits = nn.Linear(d.d_model, cfg.vocab)
        self.build_buffers()

    def build_buffers(self) -> None:
        """Id of code 0 of each RVQ level (derived from cfg, like the encoder's offsets)."""
        offsets = NUM_RESERVED + torch.arange(self.cfg.rvq_levels) * self.cfg.codebook
        self.register_buffer("level_offsets", offsets, persistent=False)

    # -- pieces shared by the teacher-forced pass and the streaming sampler --

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder ids (6 + level*1024 + code, or 0 = start) -> scaled embeddings."""
        return self.embed(tokens) * self.embed_scale

    def temporal_input(self, prev_tokens: torch.Tensor) -> torch.Tensor:
        """Mean (in float32) of the previous frame's 12 level embeddings."""
        e = self.embed_tokens(prev_tokens)
        return e.float().mean(-2).to(e.dtype)

    def soft_cap(self, logits: torch.Tensor) -> torch.Tensor:
        c = self.cfg.logit_soft_cap
        return torch.tanh(logits / c) * c

    def level_logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Soft-capped float32 logits over level `level`'s 1024 codes only (the only ids it may emit);
        through `level_heads` (one packed head per level) where linears.prepare built them."""
        heads = getattr(self, "level_heads", None)
        if heads is not None:
            return self.soft_cap(heads[level](self.final_norm(h)).float())
        lo = NUM_RESERVED + level * self.cfg.codebook
        w = self.to_logits.weight[lo: lo + self.cfg.codebook]
        b = self.to_logits.bias[lo: lo + self.cfg.codebook]
        return self.soft_cap(torch.nn.functional.linear(self.final_norm(h), w, b).float())

    # -- teacher-forced pass --

    def forward(self, cond: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """cond [B, T, 144] conditioning ids, tokens [B, T, 12] decoder ids (6 + level*1024 + code).

        Returns soft-capped logits [B, T, 12, vocab] predicting `tokens`, with the intermediates
        the parity fixtures compare: encoder output, and per layer its input, the temporal layers'
        state after self-attention, and each layer's output (depth ones flattened to [B*T, 12, D]).
        """
        b, t, q = tokens.shape
        out: dict[str, torch.Tensor] = {}
        src = out["encoded"] = self.encoder(cond)
        prev = torch.cat([torch.zeros_like(tokens[:, :1]), tokens[:, :-1]], dim=1)
        x = out["temporal_input"] = self.temporal_input(prev)
        vis = banded(t, t, self.cfg.horizon, x.device)
        for i, layer in enumerate(self.temporal):
            out[f"temporal_in_{i}"] = x
            x = out[f"temporal_mid_{i}"] = layer.self_attn.over(x, None, vis)
            x = layer.cross_attn.over(x, src, vis)
            x = out[f"temporal_{i}"] = layer.ffn(x)
        # depth: [temporal output, embeddings of levels 0..10] per frame, causal over levels
        emb = self.embed_tokens(tokens)
        h = self.adapter(torch.cat([x[:, :, None], emb[:, :, :-1]], dim=2)).flatten(0, 1)
        vis = banded(q, q, q, h.device)
        for i, layer in enumerate(self.depth):
            out[f"depth_in_{i}"] = h
            h = layer.self_attn.over(h, None, vis)
            h = out[f"depth_{i}"] = layer.ffn(h)
        logits = self.soft_cap(self.to_logits(self.final_norm(h)).float())
        out["logits"] = logits.unflatten(0, (b, t))
        return out
