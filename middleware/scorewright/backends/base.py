"""The Backend protocol every generator implements, and how one is chosen."""

from __future__ import annotations

import logging
import os
from typing import Protocol, runtime_checkable

import numpy as np

from ..conditioning import Conditioning

log = logging.getLogger(__name__)


@runtime_checkable
class Backend(Protocol):
    """A streaming music generator: one 40 ms frame (1920 x 2 float32) per call and frame."""

    name: str
    sample_rate: int
    channels: int
    frame_samples: int

    def embed_text(self, text: str) -> np.ndarray: ...
    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray: ...
    def reset(self, seed: int | None = None) -> None: ...
    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray: ...


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (not built, weights missing, ...)."""


class BackendNotInstalled(BackendUnavailable):
    """The backend's optional dependencies are not installed (an expected state, not a fault)."""


BACKENDS = ("synth", "mrt2")


def create_backend(name: str, seed: int = 0) -> Backend:
    """Instantiate a backend by name."""
    if name == "synth":
        from .synth.backend import SynthBackend
        return SynthBackend(seed=seed)
    if name == "mrt2":
        return _create_mrt2(seed)
    raise BackendUnavailable(f"unknown backend '{name}'; available: {', '.join(BACKENDS)}")


def _create_mrt2(seed: int) -> Backend:
    """MRT2 of size $SCOREWRIGHT_MRT2_SIZE (small|base, default small) from the models folder."""
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise BackendNotInstalled("the mrt2 backend needs PyTorch: pip install 'scorewright[mrt2]'") from e
    from .mrt2 import models
    from .mrt2.backend import MRT2Backend
    from .mrt2.weights import CheckpointError
    size = os.environ.get("SCOREWRIGHT_MRT2_SIZE", "small")
    if size not in models.SIZES:
        raise BackendUnavailable(f"SCOREWRIGHT_MRT2_SIZE={size!r}; expected one of {', '.join(models.SIZES)}")
    try:
        return MRT2Backend(size=size, seed=seed, compile=os.environ.get("SCOREWRIGHT_MRT2_COMPILE") == "1")
    except (models.ModelsMissing, CheckpointError) as e:
        raise BackendUnavailable(str(e)) from e


def choose_backend(prefer: str, fallback: str | None, seed: int = 0) -> Backend:
    """The preferred backend, or the fallback with a logged reason when it cannot run."""
    try:
        return create_backend(prefer, seed)
    except BackendUnavailable as e:
        if fallback is None or fallback == prefer:
            raise
        level = logging.INFO if isinstance(e, BackendNotInstalled) else logging.WARNING
        log.log(level, "backend '%s' unavailable (%s); using '%s'", prefer, e, fallback)
        return create_backend(fallback, seed)
