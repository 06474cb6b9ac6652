"""Faster linears for the streaming step on CPU, swapped into a loaded model in place.

- `PackedLinear`: the weight reordered once by oneDNN for the batch the sampler runs (3 guidance
  branches), as inductor does when it freezes a model; the first FFN layer's tanh-GELU fused in.
  Same arithmetic as F.linear (float32 accumulation), so the same rounding bound.
- `Int8Linear` (opt-in, `quant="int8"`): weight-only int8 with one symmetric scale per output
  channel, torch._weight_int8pack_mm; activations stay in the model's dtype.

The model stays usable as before (teacher-forced `forward` included): every replacement computes
what the nn.Linear it replaces computed, up to its stated rounding.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

QUANT_MODES = ("off", "int8")


@functools.cache
def packing_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN can prepack `dtype` linears here (it is missing from some builds)."""
    try:
        w, x = torch.randn(8, 4).to(dtype), torch.randn(3, 4).to(dtype)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 3)
        y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
        return bool(torch.allclose(y.float(), F.linear(x, w).float(), rtol=0.05, atol=0.05))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


class PackedLinear(nn.Module):
    """y = act(x W^T + b) with W prepacked by oneDNN for `batch` rows (CPU only)."""

    def __init__(self, linear: nn.Linear, batch: int, gelu: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach()
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(w, batch), persistent=False)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)
        self.attr, self.algorithm = ("gelu", "tanh") if gelu else ("none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, self.attr, [], self.algorithm)


class Int8Linear(nn.Module):
    """Weight-only int8: W[n] ~ scale[n] * q[n], q = round(W[n] / scale[n]) in [-127, 127],
    scale[n] = max|W[n]| / 127, so each weight is off by at most scale[n] / 2."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w, dtype = linear.weight.detach().float(), linear.weight.dtype
        # the scale as the kernel reads it (rounded to the model's dtype), so |w - q s| <= s / 2:
        # a scale rounded down by u at most gives |w / s| <= 127 (1 + u) < 127.5
        scale = (w.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127).to(dtype)
        q = torch.round(w / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("q", q.contiguous(), persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def dequantized(self) -> torch.Tensor:
        """The weight this layer multiplies by (float32)."""
        return self.q.float() * self.scale.float()[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch._weight_int8pack_mm(x.reshape(-1, self.in_features).contiguous(), self.q, self.scale)
        y = y.view(*x.shape[:-1], self.out_features)
        return y + self.bias if self.bias is not None else y


def _replace_linears(module: nn.Module, make) -> None:
    """Every nn.Linear under `module` -> make(linear, parent, name)."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, make(child, parent, name))


@torch.no_grad()
def prepare(model: nn.Module, batch: int, quant: str = "off", pack: bool = True) -> list[str]:
    """Swap the depthformer's linears for the CPU kernels in place (`batch`: rows per step, the
    guidance branches). quant="int8" makes the temporal and depth decoders' linears weight-only
    int8; the encoder, adapter and logits heads stay in the model's dtype. `pack` (CPU only): every
    other linear prepacked by oneDNN (2-3x faster than F.linear for a 3-row batch). Also builds
    `model.level_heads`, one packed logits head per RVQ level. Returns what was done, for the log."""
    if quant not in QUANT_MODES:
        raise ValueError(f"quant must be one of {', '.join(QUANT_MODES)}, got {quant!r}")
    dtype = next(model.parameters()).dtype
    done = []
    if quant == "int8":
        for stack in (model.temporal, model.depth):
            _replace_linears(stack, lambda lin, parent, name: Int8Linear(lin))
        done.append("int8 temporal and depth linears")
    if not pack or next(model.parameters()).device.type != "cpu" or not packing_works(dtype):
        return done

    def packed(lin: nn.Linear, parent: nn.Module, name: str) -> nn.Module:
        gelu = name == "w1" and isinstance(getattr(parent, "act", None), nn.GELU)
        if gelu:
            parent.act = nn.Identity()
        return PackedLinear(lin, batch, gelu=gelu)

    cb, lo = model.cfg.codebook, int(model.level_offsets[0])
    w, b = model.to_logits.weight, model.to_logits.bias
    model.level_heads = nn.ModuleList(
        PackedLinear(_slice(w, b, lo + i * cb, cb), batch) for i in range(model.cfg.rvq_levels))
    _replace_linears(model, packed)
    done.append(f"oneDNN-prepacked {str(dtype).removeprefix('torch.')} linears")
    return done


def _slice(w: torch.Tensor, b: torch.Tensor, start: int, n: int) -> nn.Linear:
    lin = nn.Linear(w.shape[1], n, dtype=w.dtype)
    lin.weight.data, lin.bias.data = w[start: start + n].contiguous(), b[start: start + n].contiguous()
    return lin
