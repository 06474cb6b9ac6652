"""Float tolerances derived from the computation, never fitted to one machine's result.

A float result of magnitude `scale` that went through `depth` accumulating operations carries at
most about scale x eps x depth of rounding error: the classic worst-case bound for a sum or dot
product of n terms is n * eps * sum(|terms|), and a network is a chain of those, so its depth is
the sum of the fan-ins along the path. Two computations of the same value that differ only in
the order of their operations (another CPU's kernels, streaming vs whole sequence, our code vs
the official one) differ by at most the sum of their two bounds. A real bug (a shifted frame, a
wrong weight, a missing norm) shows up as an error of the order of `scale`, far above the bound,
so these tolerances still catch what the tests are there for.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def rounding_bound(scale: float, depth: int, eps: float = EPS32, sides: int = 2) -> float:
    """Largest rounding difference between `sides` float computations of a value of magnitude
    `scale` through `depth` accumulating operations each (eps: unit roundoff of the dtype)."""
    return sides * float(scale) * eps * max(int(depth), 1)


def fan_in_depth(module) -> int:
    """Sum of the fan-ins of every linear, conv and embedding-sum layer of a torch module: the
    number of accumulations along its path, counting every layer once."""
    import torch
    depth = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            depth += m.in_features
        elif isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
            depth += m.weight[0].numel()
        elif isinstance(m, (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d)):
            depth += m.weight.shape[0] * m.weight[0, 0].numel()
    return depth


def unit_norm_bound(dim: int) -> float:
    """How far the norm of a float32 vector normalised to unit length can be from 1: its
    squared norm is a sum of `dim` terms of magnitude <= 1, then a square root and a division."""
    return rounding_bound(1.0, dim + 2, sides=1)


def depthformer_depth(model) -> int:
    """Accumulations on the path to an MRT2 logit: every layer once, the depth decoder again
    for each RVQ level, the encoder's sum over the conditioning channels, attention over the
    window."""
    c = model.cfg
    return fan_in_depth(model) + c.rvq_levels * fan_in_depth(model.depth) + c.cond_width + c.horizon + 1


def codec_depth(codec) -> int:
    """Accumulations on the path to a SpectroStream sample (or embedding): every conv once, the
    sum over the RVQ codebooks and the inverse FFT of one STFT frame."""
    return fan_in_depth(codec) + codec.cfg.num_quantizers + codec.cfg.frame_length


BF16 = 2.0**-8      # unit roundoff of bfloat16 (8 significand bits)


def low_precision_bound(abs_sum, fan_in: int, eps: float = BF16):
    """Largest difference between one linear or convolution layer run with weights and output in
    a low precision (unit roundoff `eps`) but float32 accumulation (as oneDNN and cuBLAS run bf16)
    and the same layer in float32 with the original weights, from the same input.

    `abs_sum` (scalar or per output): sum |x_i w_i| + |b| over the output's terms, A. The weights'
    (and bias') rounding moves the sum by at most eps x A, the output's by eps x |y| with
    |y| <= A (1 + eps + fan_in x EPS32) <= 2 A, so eps x 3 A; each side's float32 accumulation adds
    fan_in x EPS32 x A."""
    return rounding_bound(1.0, 3, eps, sides=1) * abs_sum + rounding_bound(1.0, fan_in) * abs_sum
