"""Magenta RealTime 2 in PyTorch: depthformer, SpectroStream codec, MusicCoCa style model."""

from __future__ import annotations

import os


def create(seed: int = 0):
    """The registry's factory: MRT2 of size $SCOREWRIGHT_MRT2_SIZE (small|base, default small)
    from the models folder; $SCOREWRIGHT_MRT2_COMPILE=1 turns on torch.compile."""
    from ..base import BackendNotInstalled, BackendUnavailable
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise BackendNotInstalled("the mrt2 backend needs PyTorch: pip install 'scorewright[mrt2]'") from e
    from . import models
    from .backend import MRT2Backend
    from .weights import CheckpointError
    size = os.environ.get("SCOREWRIGHT_MRT2_SIZE", "small")
    if size not in models.SIZES:
        raise BackendUnavailable(f"SCOREWRIGHT_MRT2_SIZE={size!r}; expected one of {', '.join(models.SIZES)}")
    try:
        return MRT2Backend(size=size, seed=seed, compile=os.environ.get("SCOREWRIGHT_MRT2_COMPILE") == "1")
    except (models.ModelsMissing, CheckpointError) as e:
        raise BackendUnavailable(str(e)) from e
