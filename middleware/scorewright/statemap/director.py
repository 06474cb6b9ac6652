"""The director: game state + state map -> one Conditioning per frame.

Pure and deterministic: the same map, the same inputs at the same frames and the same seed
give the same conditioning sequence. It owns the musical clock (tempo and beat position), so
transitions and stingers can land on beats and bars.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..audio import FRAME_SECONDS
from ..conditioning import (
    DRUMS_FREE,
    NOTE_FREE,
    NOTE_HELD,
    NOTE_OFF,
    NOTE_ONSET,
    Conditioning,
    blend_styles,
    free_notes,
)
from .expr import ExprError
from .model import Motif, Rule, StateMap, Stinger

log = logging.getLogger(__name__)

DEFAULT_TEMPO = 120.0
TEMPO_GLIDE_S = 1.5          # time constant of tempo changes
MAX_PROMPTS = 16             # runtime prompts a game may add


class InputError(ValueError):
    """Bad input from the game; `code` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _RuleState:
    matched: bool = False        # what the condition says now
    landed: bool = False         # what the music follows (after quantisation)
    land_beat: float | None = None
    gain: float = 0.0
    since_beat: float = 0.0      # beat where the rule last landed on
    errors: int = 0


@dataclass
class _StingerState:
    stinger: Stinger
    start_beat: float
    end_beat: float
    gain: float = 0.0


@dataclass
class DirectorStats:
    rule_errors: int = 0
    inputs: int = 0
    active_rules: list[str] = field(default_factory=list)


def _boundary(beat: float, at: str, beats_per_bar: int) -> float:
    """Beat position where a change requested at `beat` lands."""
    if at == "immediate":
        return beat
    unit = 1 if at == "beat" else beats_per_bar
    return math.ceil(beat / unit - 1e-9) * unit


class Director:
    """Evaluates a state map every frame; inputs may arrive between any two frames."""

    def __init__(self, smap: StateMap, embed_text: Callable[[str], np.ndarray],
                 embed_audio_file: Callable[[str], np.ndarray] | None = None,
                 preferred_tempo: Callable[[np.ndarray], float | None] | None = None,
                 seed: int | None = None) -> None:
        self.map = smap
        self._embed_text = embed_text
        self._preferred_tempo = preferred_tempo
        self.embeddings: dict[str, np.ndarray] = {}
        for name, style in smap.styles.items():
            if style.prompt is not None:
                self.embeddings[name] = embed_text(style.prompt)
            elif embed_audio_file is not None:
                self.embeddings[name] = embed_audio_file(str(style.audio))
            else:
                raise InputError("no_audio_prompts", f"style '{name}': this backend cannot embed audio")
        self.seed = smap.seed if seed is None else seed
        self.stats = DirectorStats()
        self.restart()

    def restart(self) -> None:
        """Back to the top: clock, params, states, rules, stingers, notes and runtime prompts."""
        smap = self.map
        self.frame = 0
        self.beat = 0.0
        self.tempo = smap.tempo or self._style_tempo(self._base_weights()) or DEFAULT_TEMPO
        self.params = {n: p.default for n, p in smap.params.items()}
        self.targets = dict(self.params)
        self.states = dict(smap.state_defaults)
        self._rules = {r.name: _RuleState() for r in smap.rules}
        self._stinger: _StingerState | None = None
        self._pending_stinger: Stinger | None = None
        self._prompts: dict[str, float] = {}
        self._held: set[int] = set()
        self._onsets: set[int] = set()
        self._released: set[int] = set()

    # -- inputs from the game ------------------------------------------------------------
    def set_param(self, name: str, value: float) -> None:
        p = self.map.params.get(name)
        if p is None:
            raise InputError("unknown_param", f"unknown param '{name}'; this map has: "
                             f"{', '.join(self.map.params) or 'no params'}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError("bad_value", f"param '{name}' needs a finite number, got {value!r}")
        self.targets[name] = min(max(float(value), p.min), p.max)
        if p.smooth_ms <= 0:
            self.params[name] = self.targets[name]
        self.stats.inputs += 1

    def set_state(self, group: str, value: str) -> None:
        values = self.map.states.get(group)
        if values is None:
            raise InputError("unknown_state", f"unknown state group '{group}'; this map has: "
                             f"{', '.join(self.map.states) or 'no states'}")
        if value not in values:
            raise InputError("bad_value", f"state '{group}' has no value {value!r}; expected one of: "
                             f"{', '.join(values)}")
        self.states[group] = value
        self.stats.inputs += 1

    def trigger(self, event: str) -> None:
        if event not in self.map.events:
            raise InputError("unknown_event", f"unknown event '{event}'; this map has: "
                             f"{', '.join(sorted(self.map.events)) or 'no events'}")
        self.stats.inputs += 1
        if event in self.map.stingers:
            self._pending_stinger = self.map.stingers[event]

    def notes(self, on: Sequence[int] = (), off: Sequence[int] = ()) -> None:
        for n in (*on, *off):
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 127:
                raise InputError("bad_value", f"notes must be MIDI numbers 0-127, got {n!r}")
        for n in off:
            if n in self._held or n in self._onsets:
                self._held.discard(n)
                self._onsets.discard(n)
                self._released.add(n)
        self._onsets.update(on)
        self.stats.inputs += 1

    def prompt(self, name: str, embedding: np.ndarray | None, weight: float) -> None:
        """Add, reweight or (weight 0) remove a runtime style prompt."""
        if not math.isfinite(weight) or weight < 0:
            raise InputError("bad_value", f"prompt weight must be a number >= 0, got {weight!r}")
        if weight == 0:
            self._prompts.pop(name, None)
            return
        if name not in self._prompts and len(self._prompts) >= MAX_PROMPTS:
            raise InputError("too_many_prompts", f"at most {MAX_PROMPTS} runtime prompts at once")
        if embedding is not None:
            self.embeddings[name] = embedding
        elif name not in self.embeddings:
            raise InputError("unknown_style", f"no style or prompt named '{name}'")
        self._prompts[name] = float(weight)
        self.stats.inputs += 1

    def embed_prompt_text(self, text: str) -> np.ndarray:
        return self._embed_text(text)

    # -- per frame -------------------------------------------------------------------------
    def step(self) -> Conditioning:
        """Conditioning for the next frame; advances the clock by one frame."""
        smap, bpb = self.map, self.map.beats_per_bar
        beats_per_frame = self.tempo / 60 * FRAME_SECONDS
        self._smooth_params()
        env: Mapping[str, object] = {**self.params, **self.states, "t": self.frame * FRAME_SECONDS,
                                     "beat": self.beat, "bar": float(self.beat // bpb)}
        frame_end = self.beat + beats_per_frame
        active: list[Rule] = []
        for rule in smap.rules:
            st = self._rules[rule.name]
            matched = bool(self._eval(rule, rule.when, env, False))
            if matched != st.matched:
                st.matched = matched
                st.land_beat = _boundary(self.beat, rule.transition.at, bpb)
            if st.land_beat is not None and st.land_beat < frame_end - 1e-9:
                st.landed, st.land_beat = st.matched, None
                if st.landed:
                    st.since_beat = self.beat
            step = 1.0 if rule.transition.fade_ms <= 0 else FRAME_SECONDS * 1000 / rule.transition.fade_ms
            st.gain = min(1.0, st.gain + step) if st.landed else max(0.0, st.gain - step)
            if st.gain > 0:
                active.append(rule)
        self.stats.active_rules = [r.name for r in active]
        weights = self._weights(active, env)
        weights = self._apply_stinger(weights, frame_end)
        style = blend_styles(self.embeddings, weights)
        total = sum(weights.values()) or 1.0
        cond = Conditioning(
            style=style, notes=self._notes_vector(active, frame_end), drums=self._drums(active),
            seed=self.seed, tempo_bpm=self.tempo, beat=self.beat, beats_per_bar=bpb,
            weights={k: round(v / total, 4) for k, v in weights.items() if v > 0},
            **self._generation(active))
        self._advance_tempo(active, style)
        self.beat = frame_end
        self.frame += 1
        return cond

    def _eval(self, rule: Rule, expr, env, fallback):
        try:
            return expr(env)
        except (ExprError, TypeError) as e:
            st = self._rules[rule.name]
            st.errors += 1
            self.stats.rule_errors += 1
            if st.errors in (1, 10, 100, 1000):
                log.warning("rule '%s': %s (error #%d; treated as %r)", rule.name, e, st.errors, fallback)
            return fallback

    def _smooth_params(self) -> None:
        for name, p in self.map.params.items():
            if p.smooth_ms > 0:
                a = 1.0 - math.exp(-FRAME_SECONDS * 1000 / p.smooth_ms)
                self.params[name] += a * (self.targets[name] - self.params[name])

    def _base_weights(self) -> dict[str, float]:
        base = {n: s.weight for n, s in self.map.styles.items() if s.weight > 0}
        return base or {next(iter(self.map.styles)): 1.0}

    def _weights(self, active: list[Rule], env) -> dict[str, float]:
        weights: dict[str, float] = {}
        cover = 0.0
        for rule in active:
            if not rule.blend:
                continue
            g = self._rules[rule.name].gain
            cover = max(cover, g)
            for style, expr in rule.blend.items():
                w = self._eval(rule, expr, env, 0.0)
                w = float(w) if isinstance(w, (int, float)) and math.isfinite(w) else 0.0
                weights[style] = weights.get(style, 0.0) + g * max(w, 0.0)
        if sum(weights.values()) <= 1e-9:
            cover = 0.0
        for style, w in self._base_weights().items():
            weights[style] = weights.get(style, 0.0) + (1.0 - cover) * w
        for name, w in self._prompts.items():
            weights[name] = weights.get(name, 0.0) + w
        return weights

    def _apply_stinger(self, weights: dict[str, float], frame_end: float) -> dict[str, float]:
        bpb = self.map.beats_per_bar
        if self._pending_stinger is not None:
            s = self._pending_stinger
            start = _boundary(self.beat, s.at, bpb)
            if start < frame_end - 1e-9:
                length = s.beats if s.beats is not None else (s.bars or 1) * bpb
                self._stinger = _StingerState(s, start, start + length)
                self._pending_stinger = None
        st = self._stinger
        if st is None:
            return weights
        step = 1.0 if st.stinger.fade_ms <= 0 else FRAME_SECONDS * 1000 / st.stinger.fade_ms
        st.gain = min(1.0, st.gain + step) if self.beat < st.end_beat else max(0.0, st.gain - step)
        if st.gain <= 0.0 and self.beat >= st.end_beat:
            self._stinger = None
            return weights
        total = sum(weights.values()) or 1.0
        out = {k: (1.0 - st.gain) * v / total for k, v in weights.items()}
        out[st.stinger.style] = out.get(st.stinger.style, 0.0) + st.gain
        return out

    def _drums(self, active: list[Rule]) -> int:
        if self._stinger is not None and self._stinger.gain > 0.5:
            d = self._stinger.stinger.drums
            return DRUMS_FREE if d is None else d
        drums = self.map.drums
        for rule in active:
            if rule.drums is not None and self._rules[rule.name].landed:
                drums = rule.drums
        return drums

    def _generation(self, active: list[Rule]) -> dict[str, float]:
        out = {"temperature": 1.0, "top_k": 40, "cfg_style": 1.0, "cfg_notes": 1.0, "cfg_drums": 1.0}
        for gen in [self.map.generation] + [r.generation for r in active if self._rules[r.name].landed]:
            out.update({k: v for k, v in vars(gen).items() if v is not None})
        return out

    def _advance_tempo(self, active: list[Rule], style: np.ndarray) -> None:
        target = self.map.tempo
        for rule in active:
            if rule.tempo is not None and self._rules[rule.name].landed:
                target = rule.tempo
        if target is None and self._preferred_tempo is not None:
            target = self._preferred_tempo(style)
        if target:
            self.tempo += (1.0 - math.exp(-FRAME_SECONDS / TEMPO_GLIDE_S)) * (target - self.tempo)

    def _style_tempo(self, weights: dict[str, float]) -> float | None:
        if self._preferred_tempo is None:
            return None
        return self._preferred_tempo(blend_styles(self.embeddings, weights))

    def _notes_vector(self, active: list[Rule], frame_end: float) -> np.ndarray:
        vec = free_notes()
        for n in self._released:
            vec[n] = NOTE_OFF
        self._released.clear()
        motifs: list[tuple[Motif, float]] = [(r.notes, self._rules[r.name].since_beat)
                                             for r in active if r.notes and self._rules[r.name].landed]
        if self._stinger is not None and self._stinger.stinger.notes is not None:
            motifs.append((self._stinger.stinger.notes, self._stinger.start_beat))
        for motif, start in motifs:
            for pitch, state in _motif_states(motif, self.beat - start, frame_end - start):
                vec[pitch] = max(vec[pitch], state)
        for n in self._held:
            vec[n] = max(vec[n], NOTE_HELD)
        for n in self._onsets:
            vec[n] = NOTE_ONSET
        self._held |= self._onsets
        self._onsets.clear()
        return vec


def _motif_states(motif: Motif, b0: float, b1: float) -> list[tuple[int, int]]:
    """(pitch, onset/held) for motif notes sounding in the window [b0, b1) (motif-relative)."""
    out = []
    if b1 <= 0:
        return out
    loop = math.floor(max(b0, 0.0) / motif.length) * motif.length
    for base in (loop - motif.length, loop, loop + motif.length):
        for start, dur, pitch in motif.notes:
            s, e = base + start, base + start + dur
            if b0 <= s < b1 and s >= 0:
                out.append((pitch, NOTE_ONSET))
            elif s < b0 < e:
                out.append((pitch, NOTE_HELD))
    return out


__all__ = ["Director", "InputError", "NOTE_FREE"]
