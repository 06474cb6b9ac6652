"""Plain data for a loaded, checked state map."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..conditioning import DRUMS_FREE
from .expr import Expr


@dataclass(frozen=True)
class Transition:
    at: str = "bar"           # immediate | beat | bar
    fade_ms: float = 1000.0


@dataclass(frozen=True)
class Motif:
    """Notes as (start beat, length in beats, MIDI pitch), looping every `length` beats."""

    notes: tuple[tuple[float, float, int], ...]
    length: float


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str | None = None
    audio: Path | None = None
    weight: float = 0.0


@dataclass(frozen=True)
class Param:
    name: str
    min: float = 0.0
    max: float = 1.0
    default: float = 0.0
    smooth_ms: float = 0.0


@dataclass(frozen=True)
class Generation:
    temperature: float | None = None
    top_k: int | None = None
    cfg_style: float | None = None
    cfg_notes: float | None = None
    cfg_drums: float | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    when: Expr
    blend: dict[str, Expr] = field(default_factory=dict)
    drums: int | None = None
    notes: Motif | None = None
    tempo: float | None = None
    generation: Generation = Generation()
    transition: Transition = Transition()


@dataclass(frozen=True)
class Stinger:
    event: str
    style: str                # name of a style (prompt stingers get a generated style name)
    beats: float | None = None
    bars: float | None = None
    at: str = "beat"
    fade_ms: float = 150.0
    drums: int | None = None
    notes: Motif | None = None


@dataclass(frozen=True)
class StateMap:
    path: Path
    name: str
    styles: dict[str, Style]
    params: dict[str, Param]
    states: dict[str, tuple[str, ...]]
    state_defaults: dict[str, str]
    events: frozenset[str]
    rules: tuple[Rule, ...]
    stingers: dict[str, Stinger]
    backend_prefer: str = "synth"
    backend_fallback: str | None = None
    seed: int = 0
    tempo: float | None = None          # None = follow the style
    beats_per_bar: int = 4
    drums: int = DRUMS_FREE
    generation: Generation = Generation()
    transition: Transition = Transition()
