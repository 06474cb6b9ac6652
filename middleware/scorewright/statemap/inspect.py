"""Why does it sound like this? A snapshot of the director after a frame, for the studio's
inspector and timeline: params (as set and as smoothed), states, the rules with their
conditions and the values those read, pending landings and their countdown, stingers and
cooldowns, the clock, the key, drums and generation settings. Plain data (JSON-ready)."""

from __future__ import annotations

from typing import Any

from ..audio import FRAME_SECONDS
from ..conditioning import Conditioning
from .director import Director


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def inspect(d: Director, cond: Conditioning) -> dict[str, Any]:
    clock, env = d.clock, d.env()
    seconds_per_beat = 60.0 / clock.tempo
    rules = []
    for rule in d.map.rules:
        st = d.rules.state[rule.name]
        lands_in = None if st.land_beat is None else (st.land_beat - clock.beat) * seconds_per_beat
        rules.append({
            "name": rule.name, "on": st.landed, "matched": st.matched, "gain": _r(st.gain, 3),
            "when": rule.when.text, "names": {n: _value(env.get(n)) for n in sorted(rule.when.names)},
            "lands_in_s": None if lands_in is None else _r(lands_in, 3),
            "lands_on": None if st.land_beat is None else rule.transition.at,
            "errors": st.errors,
        })
    stingers: dict[str, Any] = {"pending": None, "playing": None, "cooldowns": {}}
    if d.stingers.pending is not None:
        stingers["pending"] = d.stingers.pending.event
    if (p := d.stingers.playing) is not None:
        stingers["playing"] = {"event": p.stinger.event, "gain": _r(p.gain, 3),
                               "ends_in_s": _r(max(p.end_beat - clock.beat, 0) * seconds_per_beat, 3)}
    for event, frame in d.stingers.last_start.items():
        left = d.map.stingers[event].cooldown_ms / 1000 - (clock.frame - frame) * FRAME_SECONDS
        if left > 0:
            stingers["cooldowns"][event] = _r(left, 3)
    key = d.backend.key()
    return {
        "frame": clock.frame, "beat": _r(cond.beat), "bar": int(cond.beat // d.map.beats_per_bar),
        "beats_per_bar": d.map.beats_per_bar, "tempo": _r(cond.tempo_bpm, 2),
        "key": None if key is None else {"root": key[0], "mode": key[1]},
        "params": {n: _r(v) for n, v in d.params.items()},
        "targets": {n: _r(v) for n, v in d.param_targets.items()},
        "states": dict(d.states), "overrides": {k: dict(v) for k, v in d.overrides.items()},
        "weights": dict(cond.weights), "rules": rules, "stingers": stingers,
        "drums": cond.drums, "notes": [int(n) for n in (cond.notes >= 1).nonzero()[0]],
        "generation": {"temperature": _r(cond.temperature, 3), "top_k": int(cond.top_k),
                       "cfg_style": _r(cond.cfg_style, 3), "cfg_notes": _r(cond.cfg_notes, 3),
                       "cfg_drums": _r(cond.cfg_drums, 3)},
        "prompts": dict(d.styles.prompts), "backend": d.backend.name,
    }


def _value(v: Any) -> Any:
    return _r(v) if isinstance(v, float) else v


def describe_map(d: Director) -> dict[str, Any]:
    """What the studio builds its controls from: every param with its range and smoothing,
    every state group with its values, events (and which are stingers), styles, rules."""
    smap = d.map
    return {
        "name": smap.name, "path": str(smap.path), "backend": d.backend.name,
        "beats_per_bar": smap.beats_per_bar, "tempo": smap.tempo,
        "params": [{"name": p.name, "min": p.min, "max": p.max, "default": p.default,
                    "attack_ms": p.attack_ms, "release_ms": p.release_ms, "curve": p.curve}
                   for p in smap.params.values()],
        "states": [{"group": g, "values": list(v), "default": smap.state_defaults[g]}
                   for g, v in smap.states.items()],
        "events": sorted(smap.events), "stingers": sorted(smap.stingers),
        "styles": [s.name for s in smap.styles.values() if s.stinger is None],
        "rules": [{"name": r.name, "when": r.when.text, "priority": r.priority} for r in smap.rules],
    }
