"""The default backend: a procedural arranger rendered with a General MIDI SoundFont."""

from __future__ import annotations


def create(seed: int = 0):
    """The registry's factory (backends.base.REGISTRY)."""
    from .backend import SynthBackend
    return SynthBackend(seed=seed)
