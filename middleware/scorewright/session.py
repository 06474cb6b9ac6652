"""Build an Engine from a state map: load the map, choose the backend, embed the styles."""

from __future__ import annotations

from pathlib import Path

from .audio import read_audio
from .backends.base import Backend, choose_backend
from .engine import Engine
from .statemap.director import Director
from .statemap.load import load
from .statemap.model import StateMap


def make_director(smap: StateMap, backend: Backend, seed: int | None = None) -> Director:
    """A director for `smap` whose styles live in `backend`'s style space."""
    def embed_audio_file(path: str):
        pcm, sr = read_audio(path)
        return backend.embed_audio(pcm, sr)

    key = (lambda: backend.key) if hasattr(backend, "key") else None
    return Director(smap, backend.embed_text, embed_audio_file,
                    getattr(backend, "preferred_tempo", None), seed, key,
                    getattr(backend, "generation_defaults", None))


def open_engine(map_path: str | Path, seed: int | None = None, backend: str | None = None) -> Engine:
    """Load `map_path` (raises MapError) and return a ready Engine."""
    smap = load(map_path)
    seed = smap.seed if seed is None else seed
    gen = choose_backend(backend or smap.backend_prefer, None if backend else smap.backend_fallback, seed)
    return Engine(gen, make_director(smap, gen, seed))
