"""Styles: the map's styles and the game's runtime prompts in the backend's style space, and
their blend for each frame."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..audio import read_audio
from ..backends.base import Backend
from ..conditioning import MAX_STYLE_WEIGHT
from .errors import InputError
from .model import StateMap

MAX_PROMPTS = 16             # runtime prompts a game may add
PROMPT_PREFIX = "prompt:"    # runtime prompts have their own names: they never replace a style


def prompt_key(name: str) -> str:
    return name if name.startswith(PROMPT_PREFIX) else PROMPT_PREFIX + name


def embed_styles(smap: StateMap, backend: Backend) -> dict[str, np.ndarray]:
    """Embeddings of every style of the map (blend styles after the styles they use)."""
    out: dict[str, np.ndarray] = {}
    pending = dict(smap.styles)
    while pending:
        progressed = False
        for name, style in list(pending.items()):
            if style.prompt is not None:
                out[name] = backend.embed_text(style.prompt)
            elif style.audio is not None:
                out[name] = backend.embed_audio(*read_audio(style.audio))
            elif style.blend and all(part in out for part in style.blend):
                parts = list(style.blend)
                vectors = np.stack([backend.style_vector(out[p]) for p in parts])
                out[name] = backend.blend(vectors, np.array([style.blend[p] for p in parts], np.float32))
            else:
                continue
            del pending[name]
            progressed = True
        if not progressed:   # the loader rejects cycles; this guards direct use
            raise InputError("style_cycle", f"styles blend each other in a cycle: {', '.join(pending)}")
    return out


class Styles:
    """Style embeddings by name (the map's, then runtime prompts), blended by weights."""

    def __init__(self, smap: StateMap, backend: Backend) -> None:
        self.map, self.backend = smap, backend
        self.embeddings = embed_styles(smap, backend)
        self.prompts: dict[str, float] = {}
        self._key: tuple[str, ...] = ()
        self._vectors = np.zeros((0, 0), np.float32)
        self._row: dict[str, int] = {}

    @functools.cached_property
    def base_weights(self) -> dict[str, float]:
        """The map's own style weights (the music with no rule landed)."""
        base = {n: s.weight for n, s in self.map.styles.items() if s.weight > 0}
        return base or {next(iter(self.map.styles)): 1.0}

    def prompt(self, name: str, embedding: np.ndarray | None, weight: float) -> str:
        """Add or reweight a runtime prompt, or (weight 0) remove it and forget its embedding;
        returns its name in `weights`."""
        key = prompt_key(name)
        if not math.isfinite(weight) or not 0 <= weight <= MAX_STYLE_WEIGHT:
            raise InputError("bad_value", f"prompt weight must be 0-{MAX_STYLE_WEIGHT:g}, got {weight!r}")
        if weight == 0:
            self.prompts.pop(key, None)
            self.embeddings.pop(key, None)
            return key
        if key not in self.prompts and len(self.prompts) >= MAX_PROMPTS:
            raise InputError("too_many_prompts", f"at most {MAX_PROMPTS} runtime prompts at once; "
                             "remove one with weight 0")
        if embedding is None:       # a new weight for a prompt that is already there
            if key not in self.embeddings:
                raise InputError("unknown_prompt", f"no runtime prompt named '{name}'")
            embedding = self.embeddings[key]
        embedding = np.asarray(embedding, np.float32)
        if embedding.shape != (self.backend.style_dim,) or not np.isfinite(embedding).all():
            raise InputError("bad_value", f"prompt '{name}' did not embed to {self.backend.style_dim} "
                             "finite numbers")
        self.embeddings[key] = embedding
        self.prompts[key] = float(weight)
        return key

    def clear_prompts(self) -> None:
        for key in self.prompts:
            self.embeddings.pop(key, None)
        self.prompts = {}

    def adopt(self, old: Styles) -> None:
        """Keep the game's runtime prompts (a hot reload changes the map, not the game)."""
        for key, w in old.prompts.items():
            self.embeddings[key] = old.embeddings[key]
            self.prompts[key] = w

    def blend(self, weights: dict[str, float]) -> np.ndarray:
        """The backend's blend of the styles by weight (unknown names are ignored)."""
        key = tuple(self.embeddings)
        if key != self._key:          # the set of styles changed (a prompt came or went)
            self._key = key
            self._vectors = np.stack([self.backend.style_vector(self.embeddings[k]) for k in key])
            self._row = {k: i for i, k in enumerate(key)}
        w = np.zeros(len(key), dtype=np.float32)
        for name, v in weights.items():
            if v > 0 and name in self._row:
                w[self._row[name]] = v
        return self.backend.blend(self._vectors, w)
