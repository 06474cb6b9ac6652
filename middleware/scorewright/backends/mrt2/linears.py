"""Faster linears for the streaming step, swapped into a loaded model in place.

- `fuse_projections` (every device): one linear for a self-attention's queries, keys and values,
  and one for a cross-attention's keys and values (the weights stacked; the same products, in one
  matmul instead of three or two).
- `PackedLinear`: the weight reordered once by oneDNN for the batch the sampler runs (3 guidance
  branches), as inductor does when it freezes a model; the first FFN layer's tanh-GELU fused in.
  Same arithmetic as F.linear (float32 accumulation), so the same rounding bound.
- `Int8Linear` (opt-in, `quant="int8"`): weight-only int8 with one symmetric scale per output
  channel, torch._weight_int8pack_mm; activations stay in the model's dtype.
- `Int4Linear` (opt-in, `quant="int4"`, CPU): weight-only 4-bit, one scale and offset per 32 inputs
  of each output (the group-wise affine format of PyTorch's CPU kernel
  torch._weight_int4pack_mm_for_cpu); a quarter of the bytes of bf16.

The model stays usable as before (teacher-forced `forward` included): every replacement computes
what the nn.Linear it replaces computed, up to its stated rounding.
"""

from __future__ import annotations

import abc
import functools

import torch
import torch.nn.functional as F
from torch import nn

QUANT_MODES = ("off", "int8", "int4")
INT4_GROUP = 32
INT4_GROUPS = (32, 64, 128, 256)     # the group sizes PyTorch's 4-bit CPU kernel takes


@torch.library.custom_op("scorewright::packed_linear", mutates_args=())
def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, attr: str,
                  algorithm: str) -> torch.Tensor:
    """The prepacked oneDNN linear as one opaque operation for torch.compile (inductor lowers
    mkldnn._linear_pointwise only for weights it packed itself, and fails on ours)."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, attr, [], algorithm)


@packed_linear.register_fake
def _(x, packed, bias, attr, algorithm):
    return x.new_empty(*x.shape[:-1], packed.shape[0])


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
        if torch.compiler.is_compiling():
            return packed_linear(x, self.packed, self.bias, self.attr, self.algorithm)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, self.attr, [], self.algorithm)


class WeightOnlyLinear(nn.Module, abc.ABC):
    """What the weight-only linears share: the shapes, the bias (kept in the model's dtype), and
    y = matmul(x as rows) + bias, in x's shape; `matmul` is the quantised kernel."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    @abc.abstractmethod
    def matmul(self, rows: torch.Tensor) -> torch.Tensor:
        """[n, in_features] (contiguous) -> [n, out_features]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.matmul(x.reshape(-1, self.in_features).contiguous()).view(*x.shape[:-1], self.out_features)
        return y + self.bias if self.bias is not None else y


class Int8Linear(WeightOnlyLinear):
    """Weight-only int8: W[n] ~ scale[n] * q[n], q = round(W[n] / scale[n]) in [-127, 127],
    scale[n] = max|W[n]| / 127, so each weight is off by at most scale[n] / 2."""

    def __init__(self, linear: nn.Linear):
        super().__init__(linear)
        w, dtype = linear.weight.detach().float(), linear.weight.dtype
        # the scale as the kernel reads it (rounded to the model's dtype), so |w - q s| <= s / 2:
        # a scale rounded down by u at most gives |w / s| <= 127 (1 + u) < 127.5
        scale = (w.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127).to(dtype)
        q = torch.round(w / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("q", q.contiguous(), persistent=False)
        self.register_buffer("scale", scale, persistent=False)

    def matmul(self, rows: torch.Tensor) -> torch.Tensor:
        return torch._weight_int8pack_mm(rows, self.q, self.scale)


class Int4Linear(WeightOnlyLinear):
    """Weight-only 4-bit, group-wise affine: for each output n and group j of `group` inputs,
    W ~ (q - 8) * scale + offset, q in 0..15, scale = (max - min) / 15 and offset = min + 8 scale
    over the group, so each weight is off by at most scale / 2 (plus the rounding of scale and
    offset to the model's dtype). CPU only (torch._weight_int4pack_mm_for_cpu)."""

    def __init__(self, linear: nn.Linear, group: int = INT4_GROUP):
        super().__init__(linear)
        self.group = group
        if group not in INT4_GROUPS:
            raise ValueError(f"int4 groups must be one of {INT4_GROUPS}, got {group}")
        if self.in_features % group:
            raise ValueError(f"int4 needs layers whose inputs divide into groups of {group}; this one has "
                             f"{self.in_features} ({linear}): use quant int8 or off for this model")
        w, dtype = linear.weight.detach().float(), linear.weight.dtype
        groups = w.view(self.out_features, -1, group)
        low, high = groups.amin(-1), groups.amax(-1)
        scale = ((high - low) / 15).clamp(min=torch.finfo(torch.float32).tiny)
        q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32)
        self.register_buffer("packed", torch._convert_weight_to_int4pack_for_cpu(
            q.view(self.out_features, -1), 1), persistent=False)
        # [in / group, out, 2] (scale, offset), as the kernel reads them
        params = torch.stack([scale, low + 8 * scale], dim=-1).transpose(0, 1).contiguous().to(dtype)
        self.register_buffer("scale_offset", params, persistent=False)

    def matmul(self, rows: torch.Tensor) -> torch.Tensor:
        # the kernel reads the scales in the rows' dtype: the model's, as they were stored
        return torch._weight_int4pack_mm_for_cpu(rows, self.packed, self.group, self.scale_offset)


def check_quant(quant: str, device: torch.device) -> None:
    """ValueError, saying what to pick instead, when `quant` is not a mode or cannot run on `device`
    (the backend asks before loading the weights; prepare asks again)."""
    if quant not in QUANT_MODES:
        raise ValueError(f"quant must be one of {', '.join(QUANT_MODES)}, got {quant!r}")
    if quant == "int4" and device.type != "cpu":
        raise ValueError(f"quant int4 runs on the CPU only (PyTorch's 4-bit kernel), not on {device}: "
                         "use int8 or off there")


def _replace_linears(module: nn.Module, make) -> None:
    """Every nn.Linear under `module` -> make(linear, parent, name)."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, make(child, parent, name))


@torch.no_grad()
def prepare(model: nn.Module, batch: int, quant: str = "off", pack: bool = True) -> list[str]:
    """Swap the depthformer's linears for the CPU kernels in place (`batch`: rows per step, the
    guidance branches). Fuses the attention projections first (fuse_projections). quant="int8"
    or "int4" (CPU only) makes the temporal and depth decoders' linears weight-only int8 / 4-bit;
    the encoder, adapter and logits heads stay in the model's dtype. `pack` (CPU only): every
    other linear prepacked by oneDNN (2-3x faster than F.linear for a 3-row batch). Also builds
    `model.level_heads`, one packed logits head per RVQ level. Returns what was done, for the log."""
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    check_quant(quant, device)
    if hasattr(model, "level_heads") or hasattr(model.temporal[0].self_attn.attn, "qkv"):
        raise ValueError("this model was prepared already; prepare a freshly loaded one")
    fuse_projections(model)
    done = ["fused attention projections"]
    if quant != "off":
        kind = {"int8": Int8Linear, "int4": Int4Linear}[quant]
        for stack in (model.temporal, model.depth):
            _replace_linears(stack, lambda lin, parent, name: kind(lin))
        done.append(f"{quant} temporal and depth linears")
    if not pack or device.type != "cpu" or not packing_works(dtype):
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


@torch.no_grad()
def fuse_projections(model: nn.Module) -> None:
    """Stack the projections that read the same input: q, k, v of every self-attention into `qkv`,
    k, v of every cross-attention into `kv` (Attention.project uses them where they exist)."""
    for layer in [*model.temporal, *model.depth]:
        _fuse(layer.self_attn.attn, ("q", "k", "v"), "qkv")
        if layer.cross_attn is not None:
            _fuse(layer.cross_attn.attn, ("k", "v"), "kv")


def _fuse(attn: nn.Module, names: tuple[str, ...], fused: str) -> None:
    parts = [getattr(attn, name) for name in names]
    if any(type(p) is not nn.Linear or p.bias is not None for p in parts):
        raise TypeError(f"fuse_projections expects bias-free nn.Linear {names}, got "
                        f"{[type(p).__name__ for p in parts]}")
    lin = _linear(torch.cat([p.weight for p in parts]), None)
    for name in names:
        delattr(attn, name)
    setattr(attn, fused, lin)


def _slice(w: torch.Tensor, b: torch.Tensor, start: int, n: int) -> nn.Linear:
    return _linear(w[start: start + n].contiguous(), b[start: start + n].contiguous())


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """An nn.Linear holding `weight` [out, in] and `bias` (built on "meta": no throw-away
    initialisation)."""
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    lin.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        lin.bias = nn.Parameter(bias, requires_grad=False)
    return lin
