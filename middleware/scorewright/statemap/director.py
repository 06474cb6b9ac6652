"""The director: game state + state map -> one Conditioning per frame.

Pure and deterministic: the same map, the same inputs at the same frames and the same seed
give the same conditioning sequence. It owns the musical clock (tempo and beat position), so
transitions and stingers land on beats and bars, and it reports markers (beat, bar, transition
landed, stinger started) at their exact sample offset inside the frame.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..audio import FRAME_SAMPLES, FRAME_SECONDS
from ..conditioning import (
    DRUMS_FREE,
    NOTE_HELD,
    NOTE_OFF,
    NOTE_ONSET,
    Conditioning,
    blend_styles,
    free_notes,
)
from .expr import ExprError
from .model import Motif, Param, Rule, StateMap, Stinger, Transition

log = logging.getLogger(__name__)

DEFAULT_TEMPO = 120.0
TEMPO_GLIDE_S = 1.5          # time constant of tempo changes
MAX_PROMPTS = 16             # runtime prompts a game may add
KeyFn = Callable[[], tuple[int, str] | None]


class InputError(ValueError):
    """Bad input from the game; `code` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


GENERATION_DEFAULTS = {"temperature": 1.0, "top_k": 40, "cfg_style": 1.0, "cfg_notes": 1.0, "cfg_drums": 1.0}


@dataclass(frozen=True)
class Marker:
    """A musical moment inside a frame: `offset` is its sample offset from the frame start."""

    kind: str            # beat | bar | transition | stinger
    offset: int
    beat: float
    bar: int
    name: str = ""


@dataclass
class _RuleState:
    matched: bool = False        # what the condition says now (after hysteresis and hold)
    landed: bool = False         # what the music follows (after quantisation)
    land_beat: float | None = None
    changed_frame: int = -(1 << 30)
    gain: float = 0.0            # linear fade position 0..1
    since_beat: float = 0.0      # beat where the rule last landed on
    bridge_until: float = -1.0
    errors: int = 0


@dataclass
class _StingerState:
    stinger: Stinger
    start_beat: float
    end_beat: float
    gain: float = 0.0
    ended: bool = False          # its `then` states were set


@dataclass
class DirectorStats:
    rule_errors: int = 0
    ignored_stingers: int = 0
    active_rules: list[str] = field(default_factory=list)


def boundary(beat: float, at: str, beats_per_bar: int, bars: int = 1) -> float:
    """Beat position where a change requested at `beat` lands."""
    if at == "immediate":
        return beat
    if at == "beat":
        return math.ceil(beat - 1e-9)
    return (math.ceil(beat / beats_per_bar - 1e-9) + bars - 1) * beats_per_bar


def shaped(gain: float, curve: str) -> float:
    """Fade position -> gain for the fade curve."""
    if curve == "equal_power":
        return math.sin(gain * math.pi / 2)
    if curve == "s_curve":
        return gain * gain * (3 - 2 * gain)
    return gain


def apply_curve(p: Param, value: float) -> float:
    """Response curve of a param: maps its range onto itself."""
    if p.curve == "linear":
        return value
    if p.curve == "points":
        xs, ys = zip(*p.points, strict=True)
        return float(np.interp(value, xs, ys))
    x = (value - p.min) / (p.max - p.min)
    y = (math.expm1(3 * x) / math.expm1(3)) if p.curve == "exp" else x * x * (3 - 2 * x)
    return p.min + y * (p.max - p.min)


class Director:
    """Evaluates a state map every frame; inputs may arrive between any two frames."""

    def __init__(self, smap: StateMap, embed_text: Callable[[str], np.ndarray],
                 embed_audio_file: Callable[[str], np.ndarray] | None = None,
                 preferred_tempo: Callable[[np.ndarray], float | None] | None = None,
                 seed: int | None = None, key: KeyFn | None = None,
                 generation_defaults: dict[str, float] | None = None) -> None:
        self.map = smap
        self._embed_text = embed_text
        self._preferred_tempo = preferred_tempo
        self._key = key
        self.embeddings = embed_styles(smap, embed_text, embed_audio_file)
        self.seed = smap.seed if seed is None else seed
        self.stats = DirectorStats()
        self.markers: list[Marker] = []
        # precomputed per map: blend tiers by priority, generation overrides per rule
        tiers: dict[int, list[Rule]] = {}
        for r in smap.rules:
            if r.blend:
                tiers.setdefault(r.priority, []).append(r)
        self._tiers = sorted(tiers.items(), key=lambda kv: -kv[0])
        self._gen = {r.name: {k: v for k, v in vars(r.generation).items() if v is not None}
                     for r in smap.rules}
        # sampling/guidance where the map says nothing: the backend's own defaults, else neutral
        self._base_gen = {**GENERATION_DEFAULTS, **(generation_defaults or {})}
        self._map_gen = {k: v for k, v in vars(smap.generation).items() if v is not None}
        self._blend_parts = {   # (style, constant weight, or None and the expression)
            r.name: [(s, float(e.fn({})) if not e.names else 0.0, e if e.names else None)
                     for s, e in r.blend.items()] for r in smap.rules}
        self._matrix_key: tuple[str, ...] = ()
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self.restart()

    def restart(self) -> None:
        """Back to the top: clock, params, states, rules, stingers, notes and runtime prompts."""
        smap = self.map
        self.frame = 0
        self.beat = 0.0
        self.tempo = smap.tempo or self._style_tempo(self._base_weights) or DEFAULT_TEMPO
        self.raw = {n: p.default for n, p in smap.params.items()}     # smoothed, before curve
        self.params = {n: apply_curve(smap.params[n], v) for n, v in self.raw.items()}
        self.targets = dict(self.raw)
        self.states = dict(smap.state_defaults)
        self._state_since = {g: 0 for g in smap.states}
        self._rules = {r.name: _RuleState() for r in smap.rules}
        self._stinger: _StingerState | None = None
        self._pending_stinger: Stinger | None = None
        self._last_stinger_frame: dict[str, int] = {}
        self._prompts: dict[str, float] = {}
        self._held: set[int] = set()
        self._onsets: set[int] = set()
        self._released: set[int] = set()

    def adopt(self, old: Director) -> None:
        """Continue where `old` left off (hot reload): clock, game state, rules by name."""
        self.frame, self.beat, self.tempo = old.frame, old.beat, old.tempo
        for name, p in self.map.params.items():
            if name in old.raw:
                v = min(max(old.raw[name], p.min), p.max)
                self.raw[name], self.targets[name] = v, min(max(old.targets[name], p.min), p.max)
                self.params[name] = apply_curve(p, v)
        for group, values in self.map.states.items():
            if old.states.get(group) in values:
                self.states[group] = old.states[group]
                self._state_since[group] = old._state_since.get(group, 0)
        for name, st in old._rules.items():
            if name in self._rules:
                self._rules[name] = st
        for name, w in old._prompts.items():
            self.embeddings[name] = old.embeddings[name]
            self._prompts[name] = w
        self._held, self._stinger = set(old._held), None

    # -- inputs from the game ------------------------------------------------------------
    def set_param(self, name: str, value: float) -> None:
        p = self.map.params.get(name)
        if p is None:
            raise InputError("unknown_param", f"unknown param '{name}'; this map has: "
                             f"{', '.join(self.map.params) or 'no params'}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError("bad_value", f"param '{name}' needs a finite number, got {value!r}")
        self.targets[name] = min(max(float(value), p.min), p.max)

    def set_state(self, group: str, value: str) -> None:
        values = self.map.states.get(group)
        if values is None:
            raise InputError("unknown_state", f"unknown state group '{group}'; this map has: "
                             f"{', '.join(self.map.states) or 'no states'}")
        if value not in values:
            raise InputError("bad_value", f"state '{group}' has no value {value!r}; expected one of: "
                             f"{', '.join(values)}")
        if self.states[group] != value:
            self.states[group] = value
            self._state_since[group] = self.frame

    def trigger(self, event: str) -> bool:
        """Fire an event; returns False when a stinger ignored it (cooldown)."""
        if event not in self.map.events:
            raise InputError("unknown_event", f"unknown event '{event}'; this map has: "
                             f"{', '.join(sorted(self.map.events)) or 'no events'}")
        s = self.map.stingers.get(event)
        if s is None:
            return True
        last = self._last_stinger_frame.get(event)
        if last is not None and (self.frame - last) * FRAME_SECONDS * 1000 < s.cooldown_ms:
            self.stats.ignored_stingers += 1
            return False
        self._pending_stinger = s
        self._last_stinger_frame[event] = self.frame
        return True

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

    def embed_prompt_text(self, text: str) -> np.ndarray:
        return self._embed_text(text)

    # -- per frame -------------------------------------------------------------------------
    def step(self) -> Conditioning:
        """Conditioning for the next frame; advances the clock by one frame. The frame's
        markers are left in `self.markers`."""
        smap, bpb = self.map, self.map.beats_per_bar
        beats_per_frame = self.tempo / 60 * FRAME_SECONDS
        frame_end = self.beat + beats_per_frame
        self.markers = []
        self._clock_markers(frame_end, beats_per_frame)
        self._smooth_params()
        env = self.env()
        active: list[Rule] = []
        for rule in smap.rules:
            st = self._rules[rule.name]
            self._update_rule(rule, st, env, frame_end, beats_per_frame)
            if st.gain > 0:
                active.append(rule)
        self.stats.active_rules = [r.name for r in active]
        weights = self._weights(env)
        weights = self._apply_stinger(weights, frame_end, beats_per_frame)
        style = self._blend(weights)
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

    def env(self) -> dict[str, object]:
        """Names an expression can see now."""
        bpb = self.map.beats_per_bar
        env: dict[str, object] = {**self.params, **self.states, "t": self.frame * FRAME_SECONDS,
                                  "beat": self.beat, "bar": float(self.beat // bpb)}
        for group, since in self._state_since.items():
            env[f"time_in:{group}"] = (self.frame - since) * FRAME_SECONDS
        return env

    def _marker(self, kind: str, beat: float, beats_per_frame: float, name: str = "") -> None:
        if kind in self.map.markers:
            offset = int(round((beat - self.beat) / beats_per_frame * FRAME_SAMPLES))
            self.markers.append(Marker(kind, min(max(offset, 0), FRAME_SAMPLES - 1), beat,
                                       int(beat // self.map.beats_per_bar), name))

    def _clock_markers(self, frame_end: float, beats_per_frame: float) -> None:
        b = math.ceil(self.beat - 1e-9)
        while b < frame_end - 1e-9:
            if b % self.map.beats_per_bar == 0:
                self._marker("bar", b, beats_per_frame)
            self._marker("beat", b, beats_per_frame)
            b += 1

    def _update_rule(self, rule: Rule, st: _RuleState, env, frame_end: float, bpf: float) -> None:
        if st.matched and rule.exit_when is not None:
            matched = not bool(self._eval(rule, rule.exit_when, env, False))
        else:
            matched = bool(self._eval(rule, rule.when, env, False))
        if matched == st.matched and st.land_beat is None and st.gain == (1.0 if st.landed else 0.0):
            return                  # the common case: nothing changes, nothing pending, no fade
        held = (self.frame - st.changed_frame) * FRAME_SECONDS * 1000 < rule.hold_ms
        if matched != st.matched and not held:
            t = rule.transition
            st.matched, st.changed_frame = matched, self.frame
            st.land_beat = boundary(self.beat, t.at, self.map.beats_per_bar, t.bars)
        if st.land_beat is not None and st.land_beat < frame_end - 1e-9:
            st.landed, landed_at, st.land_beat = st.matched, max(st.land_beat, self.beat), None
            self._marker("transition", landed_at, bpf, f"{rule.name}:{'on' if st.landed else 'off'}")
            if st.landed:
                st.since_beat = landed_at
                bridge = rule.transition.bridge
                st.bridge_until = landed_at + rule.transition.bridge_bars * self.map.beats_per_bar \
                    if bridge else -1.0
        fade = rule.transition.fade_ms
        step = 1.0 if fade <= 0 else FRAME_SECONDS * 1000 / fade
        st.gain = min(1.0, st.gain + step) if st.landed else max(0.0, st.gain - step)

    def _blend(self, weights: dict[str, float]) -> np.ndarray:
        """blend_styles over a cached matrix of the (unit) style embeddings."""
        key = tuple(self.embeddings)
        if key != self._matrix_key:
            self._matrix_key = key
            self._matrix = np.stack([self.embeddings[k] / max(float(np.linalg.norm(self.embeddings[k])),
                                                                1e-12) for k in key]).astype(np.float32)
            self._row = {k: i for i, k in enumerate(key)}
        w = np.zeros(len(key), dtype=np.float32)
        for name, v in weights.items():
            if v > 0:
                w[self._row[name]] = v
        v = w @ self._matrix
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    def _eval(self, rule: Rule, expr, env, fallback):
        try:
            return expr.fn(env)
        except (ExprError, TypeError) as e:     # a try costs nothing until it catches
            st = self._rules[rule.name]
            st.errors += 1
            self.stats.rule_errors += 1
            if st.errors in (1, 10, 100, 1000):
                log.warning("rule '%s': %s (error #%d; treated as %r)", rule.name, e, st.errors, fallback)
            return fallback

    def _smooth_params(self) -> None:
        for name, p in self.map.params.items():
            v, target = self.raw[name], self.targets[name]
            if v == target:
                continue
            tau = p.attack_ms if target > v else p.release_ms
            new = target if tau <= 0 else v + (1.0 - math.exp(-FRAME_SECONDS * 1000 / tau)) * (target - v)
            if p.slew is not None:
                limit = p.slew * FRAME_SECONDS
                new = v + min(max(new - v, -limit), limit)
            if abs(new - target) < 1e-6 * (p.max - p.min):
                new = target
            self.raw[name] = new
            self.params[name] = apply_curve(p, new)

    @functools.cached_property
    def _base_weights(self) -> dict[str, float]:
        """The map's own style weights (the music with no rule landed); the map never changes."""
        base = {n: s.weight for n, s in self.map.styles.items() if s.weight > 0}
        return base or {next(iter(self.map.styles)): 1.0}

    def _weights(self, env) -> dict[str, float]:
        """Blend tiers by priority: a higher tier covers lower ones (and the base weights) by
        its fade gain; rules of one tier add up."""
        weights: dict[str, float] = {}
        remaining = 1.0
        for _, rules in self._tiers:
            cover, tier = 0.0, {}
            for rule in rules:
                st = self._rules[rule.name]
                if st.gain <= 0:
                    continue
                curve = rule.transition.curve
                g = st.gain if curve == "linear" else shaped(st.gain, curve)
                if st.landed and self.beat < st.bridge_until:
                    tier[rule.transition.bridge] = tier.get(rule.transition.bridge, 0.0) + g
                else:
                    for style, const, expr in self._blend_parts[rule.name]:
                        w = const if expr is None else self._eval(rule, expr, env, 0.0)
                        if w > 0:
                            tier[style] = tier.get(style, 0.0) + g * w
                if g > cover:
                    cover = g
            if sum(tier.values()) <= 1e-9:
                continue
            for style, w in tier.items():
                weights[style] = weights.get(style, 0.0) + remaining * w
            remaining *= 1.0 - cover
        for style, w in self._base_weights.items():
            weights[style] = weights.get(style, 0.0) + remaining * w
        for name, w in self._prompts.items():
            weights[name] = weights.get(name, 0.0) + w
        return weights

    def _apply_stinger(self, weights: dict[str, float], frame_end: float, bpf: float) -> dict[str, float]:
        bpb = self.map.beats_per_bar
        if self._pending_stinger is not None:
            s = self._pending_stinger
            start = boundary(self.beat, s.at, bpb)
            if start < frame_end - 1e-9:
                start = max(start, self.beat)
                length = s.beats if s.beats is not None else (s.bars or 1) * bpb
                self._stinger = _StingerState(s, start, start + length)
                self._pending_stinger = None
                self._marker("stinger", start, bpf, s.event)
        st = self._stinger
        if st is None:
            return weights
        step = 1.0 if st.stinger.fade_ms <= 0 else FRAME_SECONDS * 1000 / st.stinger.fade_ms
        st.gain = min(1.0, st.gain + step) if self.beat < st.end_beat else max(0.0, st.gain - step)
        if self.beat >= st.end_beat and not st.ended:
            st.ended = True
            for group, value in st.stinger.then_state.items():
                self.set_state(group, value)
        if st.gain <= 0.0 and self.beat >= st.end_beat:
            self._stinger = None
            return weights
        if st.stinger.style is None:
            return weights
        total = sum(weights.values()) or 1.0
        out = {k: (1.0 - st.gain) * v / total for k, v in weights.items()}
        out[st.stinger.style] = out.get(st.stinger.style, 0.0) + st.gain
        return out

    def _drums(self, active: list[Rule]) -> int:
        if self._stinger is not None and self._stinger.gain > 0.5:
            d = self._stinger.stinger.drums
            return DRUMS_FREE if d is None else d
        setting = self._top(active, lambda r: r.drums)
        return self.map.drums if setting is None else setting

    def _top(self, active: list[Rule], get):
        """The setting of the highest-priority landed rule that has one (later rules win ties)."""
        best, best_priority = None, None
        for rule in active:
            value = get(rule)
            if value is not None and self._rules[rule.name].landed and (
                    best_priority is None or rule.priority >= best_priority):
                best, best_priority = value, rule.priority
        return best

    def _generation(self, active: list[Rule]) -> dict[str, float]:
        out = {**self._base_gen, **self._map_gen}
        landed = [r for r in active if self._gen[r.name] and self._rules[r.name].landed]
        for r in sorted(landed, key=lambda r: r.priority):
            out.update(self._gen[r.name])
        return out

    def _advance_tempo(self, active: list[Rule], style: np.ndarray) -> None:
        target = self._top(active, lambda r: r.tempo) or self.map.tempo
        if target is None and self._preferred_tempo is not None:
            target = self._preferred_tempo(style)
        if target:
            self.tempo += (1.0 - math.exp(-FRAME_SECONDS / TEMPO_GLIDE_S)) * (target - self.tempo)

    def _style_tempo(self, weights: dict[str, float]) -> float | None:
        if self._preferred_tempo is None:
            return None
        return self._preferred_tempo(self._blend(weights))

    def _notes_vector(self, active: list[Rule], frame_end: float) -> np.ndarray:
        vec = free_notes()
        for n in self._released:
            vec[n] = NOTE_OFF
        self._released.clear()
        motifs: list[tuple[Motif, float]] = [(r.notes, self._rules[r.name].since_beat)
                                             for r in active if r.notes and self._rules[r.name].landed]
        if self._stinger is not None and self._stinger.stinger.notes is not None:
            motifs.append((self._stinger.stinger.notes, self._stinger.start_beat))
        shift = self._transpose()
        for motif, start in motifs:
            for pitch, state in motif_states(motif, self.beat - start, frame_end - start):
                p = pitch + shift if motif.transpose else pitch
                if 0 <= p <= 127:
                    vec[p] = max(vec[p], state)
        for n in self._held:
            vec[n] = max(vec[n], NOTE_HELD)
        for n in self._onsets:
            vec[n] = NOTE_ONSET
        self._held |= self._onsets
        self._onsets.clear()
        return vec

    def _transpose(self) -> int:
        """Semitones from C to the backend's current key root (nearest way), or 0."""
        key = self._key() if self._key is not None else None
        if not key:
            return 0
        root = key[0] % 12
        return root - 12 if root > 6 else root


def motif_states(motif: Motif, b0: float, b1: float) -> list[tuple[int, int]]:
    """(pitch, onset/held) for motif notes sounding in the window [b0, b1) (motif-relative)."""
    out: list[tuple[int, int]] = []
    if b1 <= 0 or (not motif.loop and b0 >= motif.length):
        return out
    loop = math.floor(max(b0, 0.0) / motif.length) * motif.length
    bases = (loop - motif.length, loop, loop + motif.length) if motif.loop else (0.0,)
    for base in bases:
        for start, dur, pitch in motif.notes:
            s, e = base + start, base + start + dur
            if b0 <= s < b1 and s >= 0:
                out.append((pitch, NOTE_ONSET))
            elif s < b0 < e:
                out.append((pitch, NOTE_HELD))
    return out


def embed_styles(smap: StateMap, embed_text: Callable[[str], np.ndarray],
                 embed_audio_file: Callable[[str], np.ndarray] | None) -> dict[str, np.ndarray]:
    """Embeddings of every style of the map (blend styles after the styles they use)."""
    out: dict[str, np.ndarray] = {}
    pending = dict(smap.styles)
    while pending:
        progressed = False
        for name, style in list(pending.items()):
            if style.prompt is not None:
                out[name] = embed_text(style.prompt)
            elif style.audio is not None:
                if embed_audio_file is None:
                    raise InputError("no_audio_prompts", f"style '{name}': cannot embed audio here")
                out[name] = embed_audio_file(str(style.audio))
            elif style.blend and all(part in out for part in style.blend):
                out[name] = blend_styles(out, style.blend)
            else:
                continue
            del pending[name]
            progressed = True
        if not progressed:   # the loader rejects cycles; this guards direct use
            raise InputError("style_cycle", f"styles blend each other in a cycle: {', '.join(pending)}")
    return out


__all__ = ["Director", "InputError", "Marker", "Transition", "boundary"]
