"""Where MRT2 runs and in which precision.

Device: CUDA, else Apple's MPS, else the CPU. Precision: bfloat16, as the official model computes,
wherever it is native (CUDA; MPS where the OS supports it; CPUs with AVX512-BF16 or AMX-BF16),
float32 elsewhere (emulated bf16 is no faster there). The codec follows the model on CPUs with
native bf16 (its convolutions run 2x faster) and stays float32 elsewhere.
"""

from __future__ import annotations

import functools

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(requested: str | None = None) -> torch.device:
    """`requested`, else CUDA, else MPS, else the CPU."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


@functools.cache
def _mps_bf16() -> bool:
    """bf16 on MPS needs macOS 14; older systems raise on the first bf16 kernel."""
    try:
        return bool((torch.ones(2, device="mps", dtype=torch.bfloat16) * 2).sum().item() == 4)
    except (RuntimeError, TypeError):
        return False


def model_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """The depthformer's dtype: `requested` (a DTYPES key), else bf16 where native, else fp32."""
    if requested:
        if requested not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {requested!r}")
        return DTYPES[requested]
    native = {"cuda": True, "mps": device.type == "mps" and _mps_bf16(), "cpu": cpu_native_bf16()}
    return torch.bfloat16 if native.get(device.type, False) else torch.float32


def codec_dtype(device: torch.device, model: torch.dtype) -> torch.dtype:
    """The codec's dtype: the model's bf16 on CPUs with native bf16, float32 everywhere else
    (on GPUs it is a small share of the frame, and float32 keeps its parity bound tight)."""
    return torch.bfloat16 if device.type == "cpu" and model == torch.bfloat16 and cpu_native_bf16() \
        else torch.float32
