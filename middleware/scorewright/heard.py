"""Where a change is heard: render a map twice with the same seed, with and without a message,
and find the first sample where the two differ and the first 20 ms over which the difference
reaches a quarter of the music's level (issue 17's method). The landing tests and
bench/bench_landing.py use it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .audio import FRAME_SAMPLES
from .backends.base import Backend
from .engine import Engine, Frame, ScriptItem
from .statemap.director import Director
from .statemap.model import StateMap

WINDOW = 960                 # 20 ms
AUDIBLE_SHARE = 0.25         # of the music's RMS level


@dataclass(frozen=True)
class Mark:
    """A marker of an offline render at its stream position (sample pairs)."""

    pos: int
    kind: str
    name: str
    beat: float


def render(smap: StateMap, backend: Backend, seconds: float, script: Iterable[ScriptItem] = (),
           seed: int = 0) -> tuple[np.ndarray, list[Mark]]:
    """An offline render of `smap` and the markers it made."""
    marks: list[Mark] = []

    def collect(k: int, frame: Frame) -> None:
        marks.extend(Mark(k * FRAME_SAMPLES + m.offset, m.kind, m.name, m.beat) for m in frame.markers)
    pcm = Engine(backend, Director(smap, backend, seed)).render(seconds, script, on_frame=collect)
    return pcm, marks


def first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    """The first sample pair where two renders differ at all (None: they are identical)."""
    differs = np.flatnonzero((a != b).any(axis=1))
    return int(differs[0]) if len(differs) else None


def audible(a: np.ndarray, b: np.ndarray, start: int, level: float, window: int = WINDOW,
            share: float = AUDIBLE_SHARE) -> int | None:
    """Where the difference is heard: the end of the first `window` samples ending after
    `start` whose difference RMS reaches `share` of `level` (None: never)."""
    power = np.square(a.astype(np.float64) - b).mean(axis=1)
    sums = np.concatenate([[0.0], np.cumsum(power)])
    first = max(start - window + 1, 0)
    rms = np.sqrt(np.maximum(sums[first + window:] - sums[first:-window], 0.0) / window)
    loud = np.flatnonzero(rms >= share * level)
    return first + int(loud[0]) + window if len(loud) else None


def level(pcm: np.ndarray, start: int, stop: int) -> float:
    """RMS level of a render's samples [start, stop)."""
    return float(np.sqrt(np.mean(np.square(pcm[start:stop], dtype=np.float64))))
