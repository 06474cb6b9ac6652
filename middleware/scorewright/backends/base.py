"""The Backend contract every generator implements, the registry of backends, and how one is
chosen.

Everything the director or the engine may ask of a backend is a method or attribute here, with
a default where one makes sense; nothing is discovered with getattr. Adding a backend is one new
package with a `create(seed) -> Backend` function and one line in REGISTRY.
"""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ..audio import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE
from ..conditioning import Conditioning, unit

log = logging.getLogger(__name__)

# backend name -> the package whose `create(seed)` builds it (imported only when chosen)
REGISTRY: dict[str, str] = {
    "synth": "scorewright.backends.synth",
    "mrt2": "scorewright.backends.mrt2",
}
BACKENDS = tuple(REGISTRY)


class Backend(abc.ABC):
    """A streaming music generator: one 40 ms frame (1920 x 2 float32) per call and frame."""

    name: ClassVar[str]
    sample_rate: ClassVar[int] = SAMPLE_RATE
    channels: ClassVar[int] = CHANNELS
    frame_samples: ClassVar[int] = FRAME_SAMPLES
    style_dim: int
    # sampling and guidance the director uses where a map's `generation:` says nothing
    generation_defaults: ClassVar[Mapping[str, float]] = {}
    # how many samples after its stream position a frame's conditioning is first heard (a codec's
    # lookahead, a model's reaction): markers and replies add it to their `pos` and `due`
    latency_samples: int = 0

    # -- style space --
    @abc.abstractmethod
    def embed_text(self, text: str) -> np.ndarray:
        """A text prompt -> a style embedding [style_dim] (may take a while: never on the
        frame clock)."""

    @abc.abstractmethod
    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray:
        """An audio clip (float32 [n, channels], finite) -> a style embedding [style_dim]."""

    def style_vector(self, embedding: np.ndarray) -> np.ndarray:
        """How one style enters blends (default: as a unit vector)."""
        return unit(np.asarray(embedding, np.float32))

    def blend(self, vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Styles [n, D] (style_vector of each) by weights [n] (>= 0, not all 0) -> the style a
        frame is generated with (default: the weighted mean, renormalised to unit length)."""
        return unit(weights.astype(np.float32) @ vectors)

    # -- musical hints the director follows --
    def key(self) -> tuple[int, str] | None:
        """The key the music is in now (root pitch class, 'major'|'minor'), for motifs that
        follow it; None when the backend does not know."""
        return None

    def preferred_tempo(self, style: np.ndarray) -> float | None:
        """The tempo (bpm) a style asks for, for maps with `tempo: auto`; None: no opinion."""
        return None

    # -- streaming --
    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> None:
        """Start a new stream (the same seed gives the same music)."""

    @abc.abstractmethod
    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        """The next n_frames of audio: float32 [n_frames * frame_samples, channels]."""


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (not built, weights missing, ...)."""


class BackendNotInstalled(BackendUnavailable):
    """The backend's optional dependencies are not installed (an expected state, not a fault)."""


def create_backend(name: str, seed: int = 0) -> Backend:
    """Instantiate a backend by its registry name."""
    if name not in REGISTRY:
        raise BackendUnavailable(f"unknown backend '{name}'; available: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).create(seed)


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
