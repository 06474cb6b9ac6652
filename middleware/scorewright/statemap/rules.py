"""Rules: conditions with hysteresis and hold times, changes quantised to beats and bars, fades,
and the blend of style weights by priority tier."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..audio import FRAME_SECONDS
from ..conditioning import MAX_STYLE_WEIGHT
from .clock import Clock, boundary
from .expr import Expr, ExprError
from .model import Rule, StateMap

log = logging.getLogger(__name__)


@dataclass
class RuleState:
    matched: bool = False        # what the condition says now (after hysteresis and hold)
    landed: bool = False         # what the music follows (after quantisation)
    land_beat: float | None = None
    changed_frame: int = -(1 << 30)
    gain: float = 0.0            # linear fade position 0..1
    since_beat: float = 0.0      # beat where the rule last landed on
    bridge_until: float = -1.0
    errors: int = 0


@dataclass
class RuleStats:
    errors: int = 0
    active: list[str] = field(default_factory=list)


def shaped(gain: float, curve: str) -> float:
    """Fade position -> gain for the fade curve."""
    if curve == "equal_power":
        return math.sin(gain * math.pi / 2)
    if curve == "s_curve":
        return gain * gain * (3 - 2 * gain)
    return gain


class Rules:
    """Every rule of a map and its state; `update` once per frame, then the queries."""

    def __init__(self, smap: StateMap) -> None:
        self.map = smap
        self.stats = RuleStats()
        tiers: dict[int, list[Rule]] = {}
        for r in smap.rules:
            if r.blend:
                tiers.setdefault(r.priority, []).append(r)
        self._tiers = sorted(tiers.items(), key=lambda kv: -kv[0])       # highest priority first
        self._gen = {r.name: r.generation.values()
                     for r in smap.rules}
        self._blend_parts = {   # (style, constant weight, or None and the expression)
            r.name: [(s, float(e.fn({})) if not e.names else 0.0, e if e.names else None)
                     for s, e in r.blend.items()] for r in smap.rules}
        self.state: dict[str, RuleState] = {}
        self.reset()

    def reset(self) -> None:
        self.state = {r.name: RuleState() for r in self.map.rules}

    def adopt(self, old: Rules) -> None:
        """Rules of the same name carry on where they were."""
        for name, st in old.state.items():
            if name in self.state:
                self.state[name] = st

    def evaluate(self, rule: Rule, expr: Expr, env: Mapping[str, Any], fallback: Any) -> Any:
        """An expression of `rule`; an error at run time (division by zero) is counted, logged
        now and then, and treated as `fallback`."""
        try:
            return expr.fn(env)
        except (ExprError, TypeError) as e:     # a try costs nothing until it catches
            st = self.state[rule.name]
            st.errors += 1
            self.stats.errors += 1
            if st.errors in (1, 10, 100, 1000):
                log.warning("rule '%s': %s (error #%d; treated as %r)", rule.name, e, st.errors, fallback)
            return fallback

    def update(self, env: Mapping[str, Any], clock: Clock) -> list[Rule]:
        """One frame: conditions, landings (with their markers) and fades; returns the rules
        that sound (gain > 0)."""
        active = []
        for rule in self.map.rules:
            st = self.state[rule.name]
            if st.landed and clock.beat - 1e-9 <= st.bridge_until and clock.inside(st.bridge_until):
                clock.land(st.bridge_until)          # the bridge gives way to the blend here
            self._update(rule, st, env, clock)
            if st.gain > 0:
                active.append(rule)
        self.stats.active = [r.name for r in active]
        return active

    def _update(self, rule: Rule, st: RuleState, env: Mapping[str, Any], clock: Clock) -> None:
        if st.matched and rule.exit_when is not None:
            matched = not bool(self.evaluate(rule, rule.exit_when, env, False))
        else:
            matched = bool(self.evaluate(rule, rule.when, env, False))
        if matched == st.matched and st.land_beat is None and st.gain == (1.0 if st.landed else 0.0):
            return                  # the common case: nothing changes, nothing pending, no fade
        held = (clock.frame - st.changed_frame) * FRAME_SECONDS * 1000 < rule.hold_ms
        if matched != st.matched and not held:
            t = rule.transition
            st.matched, st.changed_frame = matched, clock.frame
            st.land_beat = boundary(clock.beat, t.at, self.map.beats_per_bar, t.bars)
        if st.land_beat is not None and clock.inside(st.land_beat):
            st.landed, landed_at, st.land_beat = st.matched, max(st.land_beat, clock.beat), None
            clock.mark("transition", landed_at, f"{rule.name}:{'on' if st.landed else 'off'}")
            clock.land(landed_at)
            if st.landed:
                st.since_beat = landed_at
                bridge = rule.transition.bridge
                st.bridge_until = landed_at + rule.transition.bridge_bars * self.map.beats_per_bar \
                    if bridge else -1.0
        fade = rule.transition.fade_ms
        step = 1.0 if fade <= 0 else FRAME_SECONDS * 1000 / fade
        st.gain = min(1.0, st.gain + step) if st.landed else max(0.0, st.gain - step)

    def weights(self, env: Mapping[str, Any], clock: Clock, base: Mapping[str, float]) -> dict[str, float]:
        """Blend tiers by priority: a higher tier covers lower ones (and the map's base weights)
        by its fade gain; rules of one tier add up. A bridge holds until the frame its end is in."""
        weights: dict[str, float] = {}
        remaining = 1.0
        for _, rules in self._tiers:
            cover, tier = 0.0, {}
            for rule in rules:
                st = self.state[rule.name]
                if st.gain <= 0:
                    continue
                curve = rule.transition.curve
                g = st.gain if curve == "linear" else shaped(st.gain, curve)
                if st.landed and not clock.inside(st.bridge_until):
                    tier[rule.transition.bridge] = tier.get(rule.transition.bridge, 0.0) + g
                else:
                    for style, const, expr in self._blend_parts[rule.name]:
                        w = const if expr is None else self.evaluate(rule, expr, env, 0.0)
                        if w > 0:        # NaN is not; huge weights are capped (float32 sums)
                            tier[style] = tier.get(style, 0.0) + g * min(w, MAX_STYLE_WEIGHT)
                if g > cover:
                    cover = g
            if sum(tier.values()) <= 1e-9:
                continue
            for style, w in tier.items():
                weights[style] = weights.get(style, 0.0) + remaining * w
            remaining *= 1.0 - cover
        for style, w in base.items():
            weights[style] = weights.get(style, 0.0) + remaining * w
        return weights

    def top(self, active: list[Rule], get: Callable[[Rule], Any]) -> Any:
        """The setting of the highest-priority landed rule that has one (later rules win ties)."""
        best, best_priority = None, None
        for rule in active:
            value = get(rule)
            if value is not None and self.state[rule.name].landed and (
                    best_priority is None or rule.priority >= best_priority):
                best, best_priority = value, rule.priority
        return best

    def generation(self, active: list[Rule], base: Mapping[str, float]) -> dict[str, float]:
        """Sampling and guidance: `base`, then landed rules' overrides by rising priority."""
        out = dict(base)
        landed = [r for r in active if self._gen[r.name] and self.state[r.name].landed]
        for r in sorted(landed, key=lambda r: r.priority):
            out.update(self._gen[r.name])
        return out

    def motifs(self, active: list[Rule]) -> list:
        """(motif, beat it started) of the landed rules that play one."""
        return [(r.notes, self.state[r.name].since_beat) for r in active
                if r.notes and self.state[r.name].landed]
