"""Semantic checks of a state map that passed its schema, and the StateMap they build: names
that must exist, ranges, expressions (compiled and type-checked), motifs, stingers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends.mrt2.profiles import PRESETS
from ..conditioning import DRUMS_FREE, DRUMS_OFF, DRUMS_ON
from .expr import ExprError, compile_expr
from .model import Generation, Motif, Param, Rule, StateMap, Stinger, Style, Transition
from .source import Path_, Positions, inside_map_folder

RESERVED = frozenset({"t", "beat", "bar", "true", "false", "on", "off", "min", "max", "clamp", "abs",
                      "time_in"})


def _drums(v: Any) -> int:
    return {True: DRUMS_ON, "on": DRUMS_ON, False: DRUMS_OFF, "off": DRUMS_OFF}.get(v, DRUMS_FREE)


def _generation(d: dict | None) -> Generation:
    """Generation settings: the named preset's values (if any), overridden by the ones written."""
    d = dict(d or {})
    preset = d.pop("preset", None)
    return Generation(preset=preset, **{**(PRESETS[preset] if preset else {}), **d})


def _transition(d: dict | None, base: Transition) -> Transition:
    d = d or {}
    bridge = d.get("bridge") or {}
    return Transition(at=d.get("at", base.at), bars=int(d.get("bars", base.bars)),
                      fade_ms=float(d.get("fade_ms", base.fade_ms)), curve=d.get("curve", base.curve),
                      bridge=bridge.get("style", base.bridge if not d else None),
                      bridge_bars=float(bridge.get("bars", 1.0)))


def note_number(name: str | int) -> int | None:
    """'C4' -> 60, 'F#3' -> 54, 64 -> 64, 'rest' / '-' -> None."""
    if isinstance(name, int):
        return name
    if name in ("rest", "-"):
        return None
    import pretty_midi
    return int(pretty_midi.note_name_to_number(name))


def _motif(spec: Any, base_dir: Path, root_dir: Path, path: Path_, pos: Positions) -> Motif | None:
    loop, transpose, per_note = True, True, 1.0
    if isinstance(spec, dict):
        loop, transpose = spec.get("loop", True), spec.get("transpose", True)
        per_note = float(spec.get("beats_per_note", 1.0))
        spec, path = spec["motif"], path + ("motif",)
    if isinstance(spec, list):
        pitches = [note_number(n) for n in spec]
        notes = tuple((i * per_note, per_note * 0.95, p) for i, p in enumerate(pitches) if p is not None)
        return Motif(notes, len(pitches) * per_note, loop, transpose)
    file = inside_map_folder(base_dir, root_dir, spec, path, pos)
    if file is None:
        return None
    try:
        import mido
        mid = mido.MidiFile(str(file))
    except (OSError, ValueError, EOFError, KeyError) as e:
        pos.problem(path, f"cannot read MIDI file '{spec}': {e}")
        return None
    notes, started, t = [], {}, 0
    for msg in mido.merge_tracks(mid.tracks):
        t += msg.time
        beat = t / mid.ticks_per_beat
        if msg.type == "note_on" and msg.velocity > 0:
            started[msg.note] = beat
        elif msg.type in ("note_off", "note_on") and msg.note in started:
            start = started.pop(msg.note)
            notes.append((start, max(beat - start, 0.05), msg.note))
    if not notes:
        pos.problem(path, f"MIDI file '{spec}' has no notes")
        return None
    length = max(4.0, -(-max(s + d for s, d, _ in notes) // 4) * 4)   # whole bars of 4 beats
    return Motif(tuple(sorted(notes)), length, loop, transpose)



def _known_names(data: dict) -> dict[str, str]:
    """Names expressions may use, with their types; robust to a map the schema rejected."""
    params, states = data.get("params"), data.get("states")
    known = {name: "number" for name in params} if isinstance(params, dict) else {}
    for group, spec in states.items() if isinstance(states, dict) else ():
        values = spec.get("values") if isinstance(spec, dict) else spec
        known[group] = "state:" + "|".join(map(str, values if isinstance(values, list) else ()))
        known[f"time_in:{group}"] = "number"
    known.update({"t": "number", "beat": "number", "bar": "number"})
    return known


def _compile(text: Any, known: dict[str, str], path: Path_, pos: Positions):
    try:
        return compile_expr(text, known)
    except ExprError as e:
        mark = pos.values.get(path)
        pos.problem(path, f"bad expression {text!r}: {e}", col_shift=e.col + int(bool(mark and mark.quoted)))
        return None



# -- semantic checks ----------------------------------------------------------------------------
def build(data: dict, pos: Positions, path: Path, files: tuple[Path, ...] = ()) -> StateMap:
    """Semantic checks and construction; assumes the schema check passed."""
    root = path.parent
    known = _known_names(data)
    styles = _styles(data, pos, root)
    params = _params(data, pos)
    states, defaults = {}, {}
    for group, spec in (data.get("states") or {}).items():
        values = tuple(spec["values"] if isinstance(spec, dict) else spec)
        default = spec.get("default", values[0]) if isinstance(spec, dict) else values[0]
        if default not in values:
            pos.problem(("states", group, "default"), f"default {default!r} is not one of {list(values)}")
        states[group], defaults[group] = values, default
    for name in sorted(set(params) & set(states)):
        pos.problem(("states", name), f"'{name}' is both a param and a state; rename one", key=True)
    for section, names in (("params", params), ("states", states)):
        for name in sorted(set(names) & RESERVED):
            pos.problem((section, name), f"'{name}' is a built-in name in expressions "
                        f"({', '.join(sorted(RESERVED))}); rename it", key=True)
    transition = _transition(data.get("transition"), Transition())
    if transition.bridge and transition.bridge not in styles:
        pos.problem(("transition", "bridge", "style"), f"unknown style '{transition.bridge}'")
    rules = _rules(data, pos, root, known, styles, transition)
    stingers = _stingers(data, pos, root, styles, states)
    backend = data.get("backend", "synth")
    prefer, fallback = (backend, None) if isinstance(backend, str) else (
        backend["prefer"], backend.get("fallback"))
    tempo = data.get("tempo", "auto")
    return StateMap(
        path=path, name=data.get("name", path.stem), styles=styles, params=params, states=states,
        state_defaults=defaults, events=frozenset(data.get("events") or []) | frozenset(stingers),
        rules=tuple(rules), stingers=stingers, files=files or (path,), backend_prefer=prefer,
        backend_fallback=fallback, seed=int(data.get("seed", 0)),
        tempo=None if tempo == "auto" else float(tempo),
        beats_per_bar=int(data.get("beats_per_bar", 4)), drums=_drums(data.get("drums", "free")),
        generation=_generation(data.get("generation")), transition=transition,
        markers=tuple(data.get("markers", ("beat", "bar", "transition", "stinger"))),
        assets=tuple(dict.fromkeys(pos.named)))


def _styles(data: dict, pos: Positions, root: Path) -> dict[str, Style]:
    styles: dict[str, Style] = {}
    for name, s in data["styles"].items():
        p = ("styles", name)
        kinds = [k for k in ("prompt", "audio", "blend") if k in s]
        if len(kinds) != 1:
            has = f"; it has {', '.join(kinds)}" if kinds else ""
            pos.problem(p, "a style needs exactly one of 'prompt' (text), 'audio' (a WAV file) or "
                        f"'blend' (other styles by weight){has}")
            continue
        audio = inside_map_folder(root, root, s["audio"], p + ("audio",), pos) if "audio" in s else None
        if "audio" in s and audio is not None:
            from ..audio import read_audio
            try:
                read_audio(audio, max_seconds=0.1)
            except ValueError as e:
                pos.problem(p + ("audio",), f"cannot read '{s['audio']}' (WAV, FLAC or Ogg): {e}")
        styles[name] = Style(name, s.get("prompt"), audio, float(s.get("weight", 0.0)), s.get("blend"))
    for name, style in styles.items():   # blends must name styles and must not loop
        for part in style.blend or {}:
            if part not in data["styles"]:
                pos.problem(("styles", name, "blend", part), f"unknown style '{part}'", key=True)
        seen, todo = {name}, list(style.blend or {})
        while todo:
            part = todo.pop()
            if part == name:
                pos.problem(("styles", name, "blend"), f"style '{name}' blends itself (through "
                            f"{', '.join(sorted(seen - {name}))})")
                break
            if part in seen or part not in styles:
                continue
            seen.add(part)
            todo += list(styles[part].blend or {})
    return styles


def _params(data: dict, pos: Positions) -> dict[str, Param]:
    params = {}
    for name, d in (data.get("params") or {}).items():
        lo, hi = float(d.get("min", 0.0)), float(d.get("max", 1.0))
        default = float(d.get("default", lo))
        if lo >= hi:
            pos.problem(("params", name, "max"), f"max ({hi}) must be greater than min ({lo})")
        elif not lo <= default <= hi:
            pos.problem(("params", name, "default"), f"default {default} is outside [{lo}, {hi}]")
        curve, points = d.get("curve", "linear"), ()
        if isinstance(curve, list):
            points = tuple((float(x), float(y)) for x, y in curve)
            xs = [x for x, _ in points]
            if xs != sorted(xs) or len(set(xs)) != len(xs):
                pos.problem(("params", name, "curve"), "curve points need increasing x values")
            curve = "points"
        smooth = float(d.get("smooth_ms", 0.0))
        params[name] = Param(name, lo, hi, default, float(d.get("attack_ms", smooth)),
                             float(d.get("release_ms", smooth)), d.get("slew"), curve, points)
    return params


def _rules(data: dict, pos: Positions, root: Path, known: dict[str, str], styles: dict[str, Style],
           transition: Transition) -> list[Rule]:
    rules = []
    for i, r in enumerate(data.get("rules") or []):
        p = ("rules", i)
        when = _compile(r["when"], known, p + ("when",), pos)
        exit_when = _compile(r["exit_when"], known, p + ("exit_when",), pos) if "exit_when" in r else None
        blend = {}
        for style, w in (r.get("blend") or {}).items():
            if style not in styles:
                pos.problem(p + ("blend", style), f"unknown style '{style}'; defined styles: "
                            f"{', '.join(styles)}", key=True)
            expr = _compile(w, known, p + ("blend", style), pos)
            if expr is not None and expr.type != "number":
                pos.problem(p + ("blend", style), f"a blend weight must be a number, got a {expr.type} "
                            f"from {w!r}")
            blend[style] = expr
        rule_transition = _transition(r.get("transition"), transition)
        if rule_transition.bridge and rule_transition.bridge not in styles:
            pos.problem(p + ("transition", "bridge", "style"),
                        f"unknown style '{rule_transition.bridge}'")
        motif = _motif(r["notes"], root, root, p + ("notes",), pos) if "notes" in r else None
        if when is not None and None not in blend.values():
            rules.append(Rule(r.get("name", f"rule{i + 1}"), when, exit_when, int(r.get("priority", 0)),
                              float(r.get("hold_ms", 0.0)), blend,
                              _drums(r["drums"]) if "drums" in r else None, motif, r.get("tempo"),
                              _generation(r.get("generation")), rule_transition))
    names = [r.get("name", f"rule{i + 1}") for i, r in enumerate(data.get("rules") or [])]
    for i, n in enumerate(names):
        if n in names[:i]:
            pos.problem(("rules", i, "name"), f"duplicate rule name '{n}': also used at "
                        f"{pos.where(('rules', names.index(n), 'name'))}")
    return rules


def _stingers(data: dict, pos: Positions, root: Path, styles: dict[str, Style],
              states: dict[str, tuple[str, ...]]) -> dict[str, Stinger]:
    stingers = {}
    for event, s in (data.get("stingers") or {}).items():
        p = ("stingers", event)
        if "prompt" in s and "style" in s or not ({"prompt", "style", "notes"} & set(s)):
            pos.problem(p, "a stinger needs one of 'prompt' or 'style' (and/or 'notes')")
            continue
        if "style" in s and s["style"] not in styles:
            pos.problem(p + ("style",), f"unknown style '{s['style']}'")
            continue
        style = s.get("style") or (f"stinger_{event}" if "prompt" in s else None)
        if "prompt" in s:
            styles[style] = Style(style, s["prompt"], None, 0.0, stinger=event)
        then = s.get("then", "resume")
        then_state = {} if then == "resume" else dict(then["state"])
        for group, value in then_state.items():
            if group not in states:
                pos.problem(p + ("then", "state", group), f"unknown state group '{group}'", key=True)
            elif value not in states[group]:
                pos.problem(p + ("then", "state", group), f"state '{group}' has no value {value!r}; "
                            f"expected one of: {', '.join(states[group])}")
        motif = _motif(s["notes"], root, root, p + ("notes",), pos) if "notes" in s else None
        beats, bars = s.get("beats"), s.get("bars", None if "beats" in s else 1)
        stingers[event] = Stinger(event, style, beats, bars, s.get("at", "beat"),
                                  float(s.get("fade_ms", 150.0)),
                                  _drums(s["drums"]) if "drums" in s else None, motif,
                                  float(s.get("cooldown_ms", 0.0)), then_state)
    return stingers


def expression_problems(data: dict, pos: Positions) -> None:
    """Compile every rule expression of a map whose structure has problems, so that one run
    reports those too (`build` compiles them for a well-formed map). Names from included files
    are unknown before the includes are merged, so a map with includes is left to `build`."""
    rules = data.get("rules")
    if not isinstance(rules, list) or data.get("includes"):
        return
    known = _known_names(data)
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        texts = [(key, rule[key]) for key in ("when", "exit_when") if key in rule]
        blend = rule.get("blend")
        texts += [(("blend", style), w) for style, w in blend.items()] if isinstance(blend, dict) else []
        for key, text in texts:
            if isinstance(text, (str, int, float)):
                _compile(text, known, ("rules", i, *(key if isinstance(key, tuple) else (key,))), pos)

