"""Plain data for a loaded, checked state map."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..conditioning import DRUMS_FREE
from .expr import Expr


@dataclass(frozen=True)
class Transition:
    """When a change lands (`at` the next beat/bar, `bars` bar lines later) and how it fades."""

    at: str = "bar"           # immediate | beat | bar
    bars: int = 1             # with at: bar, land on the Nth bar line from now
    fade_ms: float = 1000.0
    curve: str = "linear"     # linear | equal_power | s_curve
    bridge: str | None = None  # style played first, for bridge_bars, when the change lands on
    bridge_bars: float = 1.0


@dataclass(frozen=True)
class Motif:
    """Notes as (start beat, length in beats, MIDI pitch), looping every `length` beats."""

    notes: tuple[tuple[float, float, int], ...]
    length: float
    loop: bool = True
    transpose: bool = True    # follow the current key (written in C), where the backend has one


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str | None = None
    audio: Path | None = None
    weight: float = 0.0
    blend: dict[str, float] | None = None   # a style made of other styles
    stinger: str | None = None               # made for this prompt stinger, not written in the map


@dataclass(frozen=True)
class Param:
    name: str
    min: float = 0.0
    max: float = 1.0
    default: float = 0.0
    attack_ms: float = 0.0    # one-pole smoothing time when rising
    release_ms: float = 0.0   # ... and when falling
    slew: float | None = None  # max change per second (units/s), applied after smoothing
    curve: str = "linear"     # linear | exp | s_curve | points
    points: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Generation:
    """Sampling and guidance; None = not set here. `preset` names the profile the values started
    from (its values are already filled in where the map set none)."""

    temperature: float | None = None
    top_k: int | None = None
    cfg_style: float | None = None
    cfg_notes: float | None = None
    cfg_drums: float | None = None
    preset: str | None = None

    def values(self) -> dict[str, float]:
        """The settings that are set, by Conditioning field name."""
        return {k: v for k, v in vars(self).items() if v is not None and k != "preset"}


@dataclass(frozen=True)
class Rule:
    name: str
    when: Expr
    exit_when: Expr | None = None      # hysteresis: once on, stays on until this is true
    priority: int = 0
    hold_ms: float = 0.0               # minimum time between two changes of the rule
    blend: dict[str, Expr] = field(default_factory=dict)
    drums: int | None = None
    notes: Motif | None = None
    tempo: float | None = None
    generation: Generation = Generation()
    transition: Transition = Transition()


@dataclass(frozen=True)
class Stinger:
    event: str
    style: str | None          # a style name (prompt stingers get a generated one) or None
    beats: float | None = None
    bars: float | None = None
    at: str = "beat"
    fade_ms: float = 150.0
    drums: int | None = None
    notes: Motif | None = None
    cooldown_ms: float = 0.0   # triggers within this time of the last start are ignored
    then_state: dict[str, str] = field(default_factory=dict)   # states set when it ends


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
    files: tuple[Path, ...] = ()        # the map and everything it includes (hot reload watches)
    assets: tuple[Path, ...] = ()       # every file it names: includes, MIDI motifs, audio styles
    backend_prefer: str = "synth"
    backend_fallback: str | None = None
    seed: int = 0
    tempo: float | None = None          # None = follow the style
    beats_per_bar: int = 4
    drums: int = DRUMS_FREE
    generation: Generation = Generation()
    transition: Transition = Transition()
    markers: tuple[str, ...] = ("beat", "bar", "transition", "stinger")
