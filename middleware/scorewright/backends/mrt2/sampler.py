"""Streaming generation with the depthformer: one 40 ms frame (12 RVQ tokens) per step.

All state lives in preallocated tensors updated in place (ring-buffer KV caches, the previous frame,
the step counter), so a whole step can be captured once as a CUDA graph and replayed. The attention
sinks sit in fixed slots in front of each temporal cache (the state holds views of the rest), so
attention is one fused call over the cache as it lies, with no copy. Guidance runs
the guided branches in one batch, as the official runtime does: [full, style masked, notes
masked]; per level, logits = full + sum_i w_i * (full - masked_i), then top-k, then argmax of
logits + temperature * Gumbel noise, and the token sampled feeds every branch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import MASK_ID
from .cuda_graph import capture
from .depthformer import Depthformer
from .layers import Layer, additive_mask

NEG = -1e9
BRANCHES = ("full", "style_masked", "notes_masked")


@dataclass
class SamplingParams:
    """Per-frame sampling settings (defaults: the official C++ runtime's, profiles.ENGINE)."""

    temperature: float = 1.0
    top_k: int = 100
    cfg_style: float = 3.0
    cfg_notes: float = 5.0


def temporal_layer_step(layer: Layer, x: torch.Tensor, src: torch.Tensor, self_k: torch.Tensor,
                        self_v: torch.Tensor, cross_k: torch.Tensor, cross_v: torch.Tensor,
                        slot: torch.Tensor, visible: torch.Tensor, q_self: torch.Tensor,
                        q_cross: torch.Tensor) -> torch.Tensor:
    """One temporal layer's streaming step (self-attention over its ring cache, cross-attention
    to the encoder's ring cache, feed-forward)."""
    x = layer.self_attn.step(x, None, self_k, self_v, slot, visible, q_self)
    x = layer.cross_attn.step(x, src, cross_k, cross_v, slot, visible, q_cross)
    return layer.ffn(x)


def depth_level_step(depth: nn.ModuleList, h: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     slot: torch.Tensor, visible: torch.Tensor, q_scales: list[torch.Tensor]) -> torch.Tensor:
    """The depth decoder's layers for one RVQ level (caches [layers, B, H, levels, hd])."""
    for i, layer in enumerate(depth):
        h = layer.ffn(layer.self_attn.step(h, None, k[i], v[i], slot, visible, q_scales[i]))
    return h


class Sampler:
    """Holds one stream's state for `model` and advances it frame by frame.

    `guidance=False` runs the full branch only (a third of the work); `guidance=True` always runs all
    three branches, so weights can change every frame without recompiling anything.
    """

    def __init__(self, model: Depthformer, batch: int = 1, guidance: bool = True, seed: int = 0,
                 cuda_graph: bool = False, compile: bool = False):
        self.model, self.cfg = model, model.cfg
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.b, self.g = batch, (len(BRANCHES) if guidance else 1)
        gb, t, d = self.b * self.g, self.cfg.temporal, self.cfg.depth
        self.window, sinks = self.cfg.horizon + 1, self.cfg.num_sinks
        # attention runs in float32 on CPU (small bf16 matmuls are slow there), else in the model's dtype
        kw = dict(device=self.device, dtype=torch.float32 if self.device.type == "cpu" else self.dtype)
        cache = (t.num_layers, gb, t.num_heads, sinks + self.window, t.head_dim)
        self._kv = {name: torch.zeros(cache, **kw) for name in ("self_k", "self_v", "cross_k", "cross_v")}
        self._visible = torch.zeros(gb, sinks + self.window, dtype=torch.bool, device=self.device)
        self._visible[:, :sinks] = True
        self.state: dict[str, torch.Tensor] = {
            **{name: kv[:, :, :, sinks:] for name, kv in self._kv.items()},
            "valid": self._visible[:, sinks:],
            "prev": torch.zeros(gb, self.cfg.rvq_levels, dtype=torch.long, device=self.device),
            "step": torch.zeros(1, dtype=torch.long, device=self.device),
        }
        q = self.cfg.rvq_levels
        dcache = (d.num_layers, gb, d.num_heads, q, d.head_dim)
        self.depth_k, self.depth_v = torch.zeros(dcache, **kw), torch.zeros(dcache, **kw)
        # level i sees levels 0..i: additive masks [1, q]
        self.depth_visible = [additive_mask(torch.arange(q, device=self.device) <= i, kw["dtype"])[None]
                              for i in range(q)]
        self._levels = [torch.tensor([i], device=self.device) for i in range(q)]   # cache slots
        self._q_scales = self._read_attention_constants(sinks, kw["dtype"])
        # per-step inputs and outputs (static buffers so a captured graph can read/write them)
        self.cond = torch.full((gb, self.cfg.cond_width), MASK_ID, dtype=torch.long, device=self.device)
        self.noise = torch.zeros(self.b, q, self.cfg.codebook, device=self.device)
        self.temperature = torch.ones(self.b, 1, device=self.device)
        self.top_k = torch.full((self.b, 1), 40, dtype=torch.long, device=self.device)
        self.scales = torch.zeros(max(self.g - 1, 1), device=self.device)
        self.tokens = torch.zeros(self.b, q, dtype=torch.long, device=self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._use_graph = cuda_graph and self.device.type == "cuda"
        # torch.compile fuses the many small element-wise kernels of a one-token step: on the CPU
        # per layer (one graph serves all temporal layers, another every depth level: about 20 s
        # to compile; sampling stays eager), elsewhere the whole step (for the CUDA graph)
        per_layer, whole = compile and self.device.type == "cpu", compile and self.device.type != "cpu"
        self._temporal_layer, self._depth_level = temporal_layer_step, depth_level_step
        if per_layer:
            self._temporal_layer = torch.compile(temporal_layer_step, dynamic=False, fullgraph=True)
            self._depth_level = torch.compile(depth_level_step, dynamic=False, fullgraph=True)
        self._sample_step = torch.compile(self._step_inplace, dynamic=False) if whole else self._step_inplace
        # a graph or a whole compiled step reads top-k from a tensor (sort, then gather); an eager
        # sampling step takes it as a number (topk: no full sort of each level's logits)
        self._k: int | None = None if self._use_graph or whole else 40

    def _read_attention_constants(self, sinks: int, dtype: torch.dtype) -> dict[str, list[torch.Tensor]]:
        """Each attention's query scale (in the cache dtype), and the sinks written into their
        slots. Read from the model's weights once, here: build the Sampler after loading them."""
        m = self.model
        scales: dict[str, list[torch.Tensor]] = {"self": [], "cross": [], "depth": []}
        with torch.no_grad():
            for i, layer in enumerate(m.temporal):
                for kind, blk in (("self", layer.self_attn), ("cross", layer.cross_attn)):
                    q_scale = blk.attn.query_scale()
                    scales[kind].append(q_scale.to(dtype))
                    entries = blk.attn.sink_entries(q_scale)
                    if entries is not None:
                        self._kv[f"{kind}_k"][i, :, :, :sinks] = entries[0]
                        self._kv[f"{kind}_v"][i, :, :, :sinks] = entries[1]
            scales["depth"] = [layer.self_attn.attn.query_scale().to(dtype) for layer in m.depth]
        return scales

    # -- public API --

    def reset(self, seed: int | None = None) -> None:
        for v in self.state.values():
            v.zero_()
        if seed is not None:
            self.generator.manual_seed(seed)

    @torch.inference_mode()
    def step(self, cond: torch.Tensor, params: SamplingParams,
             noise: torch.Tensor | None = None) -> torch.Tensor:
        """cond: [G*B, 144] ids (branch-major, see `BRANCHES`) -> codes [B, 12] (0..1023).

        `noise` [B, 12, codebook]: Gumbel noise to use instead of drawing it from the stream's
        generator (to compare with another implementation given the same noise)."""
        self._load_inputs(cond, params)
        if noise is not None:
            self.noise.copy_(noise)
        else:
            torch.rand(self.noise.shape, generator=self.generator, device=self.device, out=self.noise)
            self.noise.clamp_(min=1e-20).log_().neg_().clamp_(min=1e-20).log_().neg_()  # Gumbel(0, 1)
        if self._use_graph:
            if self._graph is None:
                self._capture()
            self._graph.replay()
        else:
            self._sample_step(None)
        return self.tokens.clone()

    @torch.inference_mode()
    def prefill(self, cond: torch.Tensor, codes: torch.Tensor) -> None:
        """Feed known frames as the official runtime's forced-token prefill does: codes [T, 12] or
        [B, T, 12]; frames 0..T-2 go through the temporal decoder as inputs, under cond[:, t]
        ([G*B, T-1, 144]), and frame T-1 is left as the previous frame for the next step. The
        previous frame the stream had (the start frame after a reset) never enters the caches."""
        codes = codes.to(self.device).expand(self.b, -1, -1) if codes.dim() == 2 else codes.to(self.device)
        self._set_prev(codes[:, 0] + self.model.level_offsets)
        for t in range(codes.shape[1] - 1):
            self.cond.copy_(cond[:, t])
            self._temporal_step()
            self._set_prev(codes[:, t + 1] + self.model.level_offsets)

    @torch.inference_mode()
    def teacher_forced_logits(self, cond: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """One step with the frame's tokens given: [G*B, 12, 1024] logits of every branch (tests)."""
        self.cond.copy_(cond)
        return self._step_inplace(codes.to(self.device) + self.model.level_offsets)

    def save(self) -> dict[str, torch.Tensor]:
        """A copy of the stream state (resuming from it continues bit-exactly)."""
        snap = {k: v.clone() for k, v in self.state.items()}
        snap["rng"] = self.generator.get_state()
        return snap

    def restore(self, snap: dict[str, torch.Tensor], rng: bool = True) -> None:
        """Back to a saved state (`rng` False: keep the generator where it is)."""
        for k, v in self.state.items():
            v.copy_(snap[k])
        if rng:
            self.generator.set_state(snap["rng"])

    # -- internals --

    def _load_inputs(self, cond: torch.Tensor, p: SamplingParams) -> None:
        self.cond.copy_(cond)
        self.temperature.fill_(p.temperature)
        k = min(max(int(p.top_k), 1), self.cfg.codebook)
        self.top_k.fill_(k)
        if self._k is not None:
            self._k = k
        if self.g > 1:
            self.scales.copy_(torch.tensor([p.cfg_style, p.cfg_notes]))

    def _set_prev(self, ids: torch.Tensor) -> None:
        self.state["prev"].copy_(ids.repeat(self.g, 1))

    def _temporal_step(self) -> torch.Tensor:
        m, s, kv = self.model, self.state, self._kv
        slot = s["step"] % self.window
        s["valid"].index_fill_(1, slot, True)
        slot = slot + self.cfg.num_sinks   # the same slot in the caches, which start with the sinks
        visible = additive_mask(self._visible, kv["self_k"].dtype)[:, None, None, :]
        src = m.encoder(self.cond)[:, None]
        x = m.temporal_input(s["prev"])[:, None]
        for i, layer in enumerate(m.temporal):
            x = self._temporal_layer(layer, x, src, kv["self_k"][i], kv["self_v"][i], kv["cross_k"][i],
                                     kv["cross_v"][i], slot, visible, self._q_scales["self"][i],
                                     self._q_scales["cross"][i])
        s["step"].add_(1)
        return x

    def _step_inplace(self, forced: torch.Tensor | None) -> torch.Tensor | None:
        m = self.model
        h = m.adapter(self._temporal_step())
        all_logits, ids = [], []
        for level in range(self.cfg.rvq_levels):
            h = self._depth_level(m.depth, h, self.depth_k, self.depth_v, self._levels[level],
                                  self.depth_visible[level], self._q_scales["depth"])
            logits = m.level_logits(h[:, 0], level)
            if forced is not None:
                all_logits.append(logits)
                tok = forced[..., level].reshape(-1)[: self.b]
            else:
                code = self._sample(self._guide(logits), level)
                self.tokens[:, level] = code
                tok = code + m.level_offsets[level]
            ids.append(tok)
            if level + 1 < self.cfg.rvq_levels:   # the next level's input, the same in every branch
                h = m.adapter(m.embed_tokens(tok)).repeat(self.g, 1)[:, None]
        self._set_prev(torch.stack(ids, dim=-1))
        return torch.stack(all_logits, dim=1) if forced is not None else None

    def _guide(self, logits: torch.Tensor) -> torch.Tensor:
        """full + w_style * (full - style_masked) + w_notes * (full - notes_masked), added in
        that order (as the official sampler does)."""
        if self.g == 1:
            return logits
        branches = logits.view(self.g, self.b, -1)
        full = guided = branches[0]
        for i in range(1, self.g):
            guided = guided + self.scales[i - 1] * (full - branches[i])
        return guided

    def _sample(self, logits: torch.Tensor, level: int) -> torch.Tensor:
        """Top-k (ties kept: every code at least the k-th largest), then argmax of
        logits + temperature * Gumbel noise."""
        if self._k is not None:
            kth = logits.topk(self._k, dim=-1, sorted=False).values.amin(-1, keepdim=True)
        else:
            kth = logits.sort(dim=-1, descending=True).values.gather(-1, self.top_k - 1)
        logits = logits.masked_fill(logits < kth, NEG)
        return (logits + self.noise[:, level] * self.temperature).argmax(-1)

    def _capture(self) -> None:
        snap = self.save()
        self._graph, _ = capture(lambda: self._sample_step(None), warmup=3)
        self.restore(snap)
