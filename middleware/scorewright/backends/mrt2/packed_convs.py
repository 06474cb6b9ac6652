"""The SpectroStream decoder's convolutions with their weights reordered once by oneDNN (CPU), as
inductor does when it freezes a model: plain F.conv2d / conv_transpose2d reorder the weights on
every call, which is half of the codec's time for one 40 ms frame. Same arithmetic (float32
accumulation), so the same rounding bound as the layer it replaces.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

ZERO, ONE = [0, 0], [1, 1]


@functools.cache
def conv_packing_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN can prepack `dtype` convolutions here (it is missing from some builds)."""
    try:
        conv = nn.Conv2d(4, 6, 3).to(dtype)
        x = torch.randn(1, 4, 5, 5).to(dtype)
        y = PackedConv(conv, tuple(x.shape))(x)
        return bool(torch.allclose(y.float(), conv(x).float(), rtol=0.05, atol=0.05))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


class PackedConv(nn.Module):
    """A Conv2d or ConvTranspose2d (no padding, dilation 1, one group) with its weight prepacked
    for inputs shaped like `shape` (other shapes still work)."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, shape: tuple[int, ...]):
        super().__init__()
        if conv.groups != 1 or tuple(conv.dilation) != (1, 1) or any(conv.padding):
            raise ValueError("PackedConv takes unpadded, undilated, ungrouped convolutions")
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.stride = list(conv.stride)
        w = conv.weight.detach()
        if self.transposed:
            packed = torch.ops.mkldnn._reorder_convolution_transpose_weight(
                w, ZERO, ZERO, self.stride, ONE, 1, list(shape))
        else:
            packed = torch.ops.mkldnn._reorder_convolution_weight(w, ZERO, self.stride, ONE, 1, list(shape))
        self.register_buffer("packed", packed, persistent=False)
        bias = conv.bias.detach().clone() if conv.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, self.packed, self.bias, ZERO, ZERO, self.stride, ONE, 1, "none", [], "")
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.packed, self.bias, ZERO, self.stride, ONE, 1, "none", [], "")


@torch.no_grad()
def pack_codec(decoder: nn.Module) -> list[str]:
    """Swap a CPU SpectroStream decoder's convolutions for PackedConv in place, each packed for the
    input it gets when one frame is decoded (found by decoding one frame, then resetting). Returns
    what was done, for the log (nothing where oneDNN cannot pack the decoder's dtype)."""
    dtype = decoder.compute_dtype
    if decoder.codebooks.device.type != "cpu" or not conv_packing_works(dtype):
        return []
    convs = {n: m for n, m in decoder.named_modules() if type(m) in (nn.Conv2d, nn.ConvTranspose2d)}
    shapes: dict[str, tuple[int, ...]] = {}

    def seen(name: str):
        def hook(mod, args, out) -> None:      # returns None: the output stays as it is
            shapes.setdefault(name, tuple(args[0].shape))
        return hook

    hooks = [m.register_forward_hook(seen(n)) for n, m in convs.items()]
    try:
        decoder.reset()
        decoder.decode(torch.zeros(1, 1, 1, dtype=torch.long), cuda_graph=False)
    finally:
        for h in hooks:
            h.remove()
    for name, conv in convs.items():
        parent, attr = name.rsplit(".", 1)
        setattr(decoder.get_submodule(parent), attr, PackedConv(conv, shapes[name]))
    decoder.cache.clear()
    decoder.frames_seen = 0
    return [f"oneDNN-prepacked {str(dtype).removeprefix('torch.')} codec convolutions ({len(convs)})"]
