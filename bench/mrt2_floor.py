"""The physical floors of one MRT2 frame on this machine, measured in the benchmark's own run:

- memory: bytes read per frame (weights, and the KV caches the temporal attention reads) over the
  measured read bandwidth (a sum over a 512 MiB buffer, far larger than any cache);
- compute: FLOPs per frame (counted on a real frame with torch's FlopCounterMode) over the measured
  peak matmul throughput (a 2048^3 matmul) in the dtype the work runs in.

Weights read per frame: the temporal decoder once, the depth decoder and the adapter once per RVQ
level (12), the logits head once (each level reads its own 1024 rows), the codec's convolutions
once; embedding tables only by the rows gathered (negligible, not counted). The depth decoder
(bf16: 28 MB) may stay in a large last-level cache between levels, so the floor is given both
with it read 12 times ("read") and once ("unique").

`step_linears` records the linear layers one model step runs (with their inputs), so the benchmark
can time them alone, back to back: the part of the step that reads the weights, against the rest
(attention, norms, sampling, the Python between operations).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from scorewright.backends.mrt2.linears import PackedLinear, WeightOnlyLinear

LINEARS = (nn.Linear, PackedLinear, WeightOnlyLinear)


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def module_bytes(m: torch.nn.Module) -> int:
    """Bytes of a module's weights (parameters and buffers, packed ones included), embedding
    tables left out (only their gathered rows are read)."""
    total = 0
    for sub in m.modules():
        if isinstance(sub, torch.nn.Embedding):
            continue
        total += sum(_tensor_bytes(t) for t in sub.parameters(recurse=False))
        total += sum(_tensor_bytes(t) for t in sub.buffers(recurse=False) if t.is_floating_point()
                     or t.dtype in (torch.int8, torch.uint8, torch.int32))
    return total


def frame_bytes(backend) -> dict[str, int]:
    """Weights and caches one frame of `backend` (an MRT2Backend) reads."""
    m, dec, s = backend.model, backend.decoder, backend.sampler
    levels = m.cfg.rvq_levels
    temporal = module_bytes(m.temporal) + module_bytes(m.encoder)
    depth = module_bytes(m.depth) + module_bytes(m.adapter) + module_bytes(m.final_norm)
    heads = getattr(m, "level_heads", None)
    logits = module_bytes(heads) if heads is not None else module_bytes(m.to_logits)
    codec = module_bytes(dec) - _tensor_bytes(dec.codebooks)
    caches = sum(_tensor_bytes(s.state[k]) for k in ("self_k", "self_v", "cross_k", "cross_v"))
    caches += _tensor_bytes(s.depth_k) + _tensor_bytes(s.depth_v)
    return {"model_weights_read": temporal + levels * depth + logits,
            "model_weights_unique": temporal + depth + logits,
            "codec_weights": codec, "kv_cache": caches}


def _best_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def read_bandwidth_gbs(mib: int = 512, repeats: int = 5) -> float:
    """Best read bandwidth of a float32 sum over `mib` MiB (GB/s, 1e9 bytes)."""
    x = torch.ones(mib * 2**20 // 4)
    return _tensor_bytes(x) / _best_ms(x.sum, repeats) / 1e6


def peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best matmul throughput of an n x n x n product in `dtype` (GFLOP/s)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n**3 / _best_ms(lambda: a @ b, repeats) / 1e6


def _register_packed_ops() -> None:
    """FLOP formulas for the prepacked and weight-only-quantised linears and the prepacked
    convolutions the CPU path uses (the counter knows only aten's own matmuls and convolutions)."""
    ops = []
    for name in ("mkldnn._linear_pointwise", "aten._weight_int8pack_mm", "aten._weight_int4pack_mm_for_cpu"):
        ns, op = name.split(".")
        packet = getattr(getattr(torch.ops, ns), op, None)
        if packet is not None and packet not in ops:
            ops.append(packet)

    def formula(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        n = out_shape[-1] if out_shape is not None else w_shape[0]   # packed weights: see the output
        return 2 * torch.Size(x_shape[:-1]).numel() * n * x_shape[-1]

    def conv(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        """Prepacked weights keep the logical shape [c_out, c_in, kh, kw]: each output takes
        c_in * kh * kw multiply-adds."""
        return 2 * torch.Size(out_shape).numel() * torch.Size(w_shape[1:]).numel()

    def conv_transpose(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        """Each input element meets c_out * kh * kw weights."""
        return 2 * torch.Size(x_shape).numel() * w_shape[0] * torch.Size(w_shape[2:]).numel()

    formulas = [(op, formula) for op in ops]
    for name, f in (("_convolution_pointwise", conv), ("_convolution_transpose_pointwise", conv_transpose)):
        packet = getattr(torch.ops.mkldnn, name, None)
        if packet is not None:
            formulas.append((packet, f))
    for op, f in formulas:
        try:
            register_flop_formula(op, get_raw=False)(f)
        except Exception:  # already registered (a second call in one process)
            pass


def frame_flops(run_frame: Callable[[], object]) -> int:
    """FLOPs of one call of `run_frame` (matmuls and convolutions); compiled code runs eagerly for
    the count (the counting mode does not see inside compiled graphs)."""
    _register_packed_ops()
    counter = FlopCounterMode(display=False)
    with torch.compiler.set_stance("force_eager"), counter:
        run_frame()
    return counter.get_total_flops()


def step_linears(model: nn.Module, run_step: Callable[[], object]) -> list[tuple[nn.Module, torch.Tensor]]:
    """The linear layers (plain, prepacked or quantised) one call of `run_step` runs, in order, each
    with a copy of its input; compiled code runs eagerly so that every call is seen. Empty where the
    step replays a captured CUDA graph (nothing runs in Python then)."""
    calls: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: calls.append((mod, args[0].clone())))
             for m in model.modules() if isinstance(m, LINEARS)]
    try:
        with torch.compiler.set_stance("force_eager"):
            run_step()
    finally:
        for h in hooks:
            h.remove()
    return calls
