"""Build an Engine from a state map: load the map, choose the backend, embed the styles."""

from __future__ import annotations

from pathlib import Path

from .backends.base import Backend, choose_backend
from .engine import Engine
from .statemap.director import Director
from .statemap.load import load
from .statemap.model import StateMap


def make_director(smap: StateMap, backend: Backend, seed: int | None = None) -> Director:
    """A director for `smap` whose styles live in `backend`'s style space."""
    return Director(smap, backend, seed)


def open_engine(map_path: str | Path, seed: int | None = None, backend: str | None = None) -> Engine:
    """Load `map_path` (raises MapError) and return a ready Engine."""
    smap = load(map_path)
    seed = smap.seed if seed is None else seed
    gen = choose_backend(backend or smap.backend_prefer, None if backend else smap.backend_fallback, seed)
    return Engine(gen, make_director(smap, gen, seed))
