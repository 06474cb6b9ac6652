"""The director: game state + state map -> one Conditioning per frame.

Pure and deterministic: the same map, the same inputs at the same frames and the same seed give
the same conditioning sequence. Its jobs live in their own rooms and it composes them each
frame: the clock (tempo, beats, markers), params (smoothing and curves), rules (conditions,
quantised landings, fades, priority tiers), stingers, notes (the game's and motifs) and styles
(the map's and runtime prompts, blended in the backend's style space).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..audio import FRAME_SECONDS
from ..backends.base import Backend
from ..conditioning import Conditioning
from .clock import Clock, Marker, boundary
from .errors import InputError
from .model import StateMap
from .notes import Notes, transpose_to
from .params import Params
from .rules import Rules
from .stingers import Stingers
from .styles import Styles

log = logging.getLogger(__name__)

DEFAULT_TEMPO = 120.0
# sampling and guidance where neither the map nor the backend says anything
GENERATION_DEFAULTS = {"temperature": 1.0, "top_k": 40, "cfg_style": 1.0, "cfg_notes": 1.0, "cfg_drums": 1.0}


@dataclass
class DirectorStats:
    rule_errors: int = 0
    ignored_stingers: int = 0
    bad_frames: int = 0          # frames whose style or tempo came out non-finite (kept the last good)
    active_rules: list[str] = field(default_factory=list)


class Director:
    """Evaluates a state map every frame; inputs may arrive between any two frames."""

    def __init__(self, smap: StateMap, backend: Backend, seed: int | None = None) -> None:
        self.map, self.backend = smap, backend
        self.seed = smap.seed if seed is None else seed
        self.styles = Styles(smap, backend)
        self._params = Params(smap.params)
        self.rules = Rules(smap)
        self.stingers = Stingers(smap)
        self.notes_in = Notes()
        self.overrides: dict[str, dict[str, float | str]] = {"param": {}, "state": {}}
        self._held_back: dict[str, dict[str, float | str]] = {"param": {}, "state": {}}
        self._base_gen = {**GENERATION_DEFAULTS, **backend.generation_defaults,
                          **smap.generation.values()}
        self._bad_frames = 0
        self.restart()

    # -- views ---------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, float]:
        """Params as expressions see them (after smoothing and curves)."""
        return self._params.values

    @property
    def param_targets(self) -> dict[str, float]:
        """Params as the game last set them (before smoothing)."""
        return self._params.targets

    @property
    def embeddings(self) -> dict[str, np.ndarray]:
        return self.styles.embeddings

    @property
    def markers(self) -> list[Marker]:
        """The markers of the last frame made."""
        return self.clock.markers

    @property
    def beat(self) -> float:
        return self.clock.beat

    @property
    def tempo(self) -> float:
        return self.clock.tempo

    @property
    def frame(self) -> int:
        return self.clock.frame

    @property
    def stats(self) -> DirectorStats:
        return DirectorStats(self.rules.stats.errors, self.stingers.ignored, self._bad_frames,
                             self.rules.stats.active)

    # -- lifecycle -----------------------------------------------------------------------
    def restart(self) -> None:
        """Back to the top: clock, params, states, rules, stingers, notes and runtime prompts."""
        smap = self.map
        tempo = smap.tempo or self.backend.preferred_tempo(self.styles.blend(self.styles.base_weights)) \
            or DEFAULT_TEMPO
        self.clock = Clock(smap.beats_per_bar, smap.markers, tempo)
        self._params.reset()
        self.states = dict(smap.state_defaults)
        self._state_since = {g: 0 for g in smap.states}
        self.rules.reset()
        self.stingers.reset()
        self.notes_in.reset()
        self.styles.clear_prompts()
        self.overrides = {"param": {}, "state": {}}
        self._held_back = {"param": {}, "state": {}}
        self._last_style: np.ndarray | None = None

    def adopt(self, old: Director) -> None:
        """Continue where `old` left off (hot reload): clock, game state, rules by name."""
        self.clock.adopt(old.clock)
        self._params.adopt(old._params)
        for group, values in self.map.states.items():
            if old.states.get(group) in values:
                self.states[group] = old.states[group]
                self._state_since[group] = old._state_since.get(group, 0)
        self.rules.adopt(old.rules)
        self.styles.adopt(old.styles)
        self.notes_in.held = set(old.notes_in.held)

    # -- inputs from the game ------------------------------------------------------------
    def set_param(self, name: str, value: float) -> None:
        """The game sets a param (kept aside while a designer overrides it)."""
        v = self._params.check(name, value)
        if name in self.overrides["param"]:
            self._held_back["param"][name] = v
        else:
            self._params.targets[name] = v

    def set_state(self, group: str, value: str) -> None:
        """The game sets a state (kept aside while a designer overrides it)."""
        self._check_state(group, value)
        if group in self.overrides["state"]:
            self._held_back["state"][group] = value
        else:
            self._apply_state(group, value)

    def _check_state(self, group: str, value: str) -> None:
        values = self.map.states.get(group)
        if values is None:
            raise InputError("unknown_state", f"unknown state group '{group}'; this map has: "
                             f"{', '.join(self.map.states) or 'no states'}")
        if value not in values:
            raise InputError("bad_value", f"state '{group}' has no value {value!r}; expected one of: "
                             f"{', '.join(values)}")

    def _apply_state(self, group: str, value: str) -> None:
        if self.states[group] != value:
            self.states[group] = value
            self._state_since[group] = self.clock.frame

    def override(self, kind: str, name: str, value: float | str) -> None:
        """A designer pins a param or state (the studio, attached to a live game): the game's
        own values for it are kept aside until `release`."""
        if kind == "param":
            v = self._params.check(name, value)
            if name not in self.overrides["param"]:
                self._held_back["param"][name] = self._params.targets[name]
            self.overrides["param"][name] = self._params.targets[name] = v
        else:
            self._check_state(name, value)
            if name not in self.overrides["state"]:
                self._held_back["state"][name] = self.states[name]
            self.overrides["state"][name] = value
            self._apply_state(name, value)

    def release(self, kind: str, name: str) -> None:
        """The game's latest value for an overridden param or state applies again."""
        if self.overrides[kind].pop(name, None) is None:
            raise InputError("not_overridden", f"{kind} '{name}' is not overridden")
        game = self._held_back[kind].pop(name)
        if kind == "param":
            self._params.targets[name] = game
        else:
            self._apply_state(name, game)

    def trigger(self, event: str) -> bool:
        """Fire an event; returns False when a stinger ignored it (cooldown)."""
        return self.stingers.trigger(event, self.clock.frame)

    def notes(self, on: Sequence[int] = (), off: Sequence[int] = ()) -> None:
        self.notes_in.play(on, off)

    def prompt(self, name: str, embedding: np.ndarray | None, weight: float) -> str:
        """Add, reweight or (weight 0) remove a runtime style prompt; returns its style name."""
        return self.styles.prompt(name, embedding, weight)

    # -- per frame -------------------------------------------------------------------------
    def step(self) -> Conditioning:
        """Conditioning for the next frame; advances the clock by one frame. The frame's
        markers are left in `self.markers`."""
        clock = self.clock
        clock.begin_frame()
        self._params.smooth()
        env = self.env()
        active = self.rules.update(env, clock)
        weights = self.rules.weights(env, clock, self.styles.base_weights)
        for name, w in self.styles.prompts.items():
            weights[name] = weights.get(name, 0.0) + w
        weights = self.stingers.apply(weights, clock, self.set_state)
        style = self._checked(self.styles.blend(weights))
        total = sum(weights.values()) or 1.0
        motifs = self.rules.motifs(active)
        if (stinger_motif := self.stingers.motif()) is not None:
            motifs.append(stinger_motif)
        drums = self.stingers.drums()
        if drums is None:
            drums = self.rules.top(active, lambda r: r.drums)
        notes = self.notes_in.vector(motifs, clock.beat, clock.frame_end, transpose_to(self.backend.key()))
        if self.notes_in.first_onset is not None:
            clock.land(self.notes_in.first_onset)
        cond = Conditioning(
            style=style, notes=notes,
            drums=self.map.drums if drums is None else drums, seed=self.seed, tempo_bpm=clock.tempo,
            beat=clock.beat, beats_per_bar=self.map.beats_per_bar, change_beat=clock.landed,
            weights={k: round(v / total, 4) for k, v in weights.items() if v > 0},
            **self.rules.generation(active, self._base_gen))
        target = self.rules.top(active, lambda r: r.tempo) or self.map.tempo
        clock.glide_tempo(target if target is not None else self.backend.preferred_tempo(style))
        clock.end_frame()
        return cond

    def _checked(self, style: np.ndarray) -> np.ndarray:
        """The blended style, or the last good one if it came out non-finite (a frame never
        poisons the next ones)."""
        if np.isfinite(style).all():
            self._last_style = style
            return style
        self._bad_frames += 1
        if self._bad_frames in (1, 10, 100, 1000):
            log.error("frame %d: the blended style is not finite; keeping the last good one "
                      "(#%d)", self.clock.frame, self._bad_frames)
        if self._last_style is not None:
            return self._last_style
        return np.zeros_like(style)

    def env(self) -> dict[str, object]:
        """Names an expression can see now."""
        clock, bpb = self.clock, self.map.beats_per_bar
        env: dict[str, object] = {**self._params.values, **self.states, "t": clock.seconds,
                                  "beat": clock.beat, "bar": float(clock.beat // bpb)}
        for group, since in self._state_since.items():
            env[f"time_in:{group}"] = (clock.frame - since) * FRAME_SECONDS
        return env


__all__ = ["Director", "DirectorStats", "InputError", "Marker", "boundary"]
