"""Load a state map: YAML (with positions) -> JSON Schema check -> includes -> semantic checks
-> StateMap.

Every problem is reported as file:line:col, the key path, the bad value and what was expected;
all problems found are reported together.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..conditioning import DRUMS_FREE, DRUMS_OFF, DRUMS_ON
from .expr import ExprError, compile_expr
from .model import Generation, Motif, Param, Rule, StateMap, Stinger, Style, Transition

MAX_MAP_BYTES = 1_000_000
MAX_INCLUDES = 64
Path_ = tuple[Any, ...]
SECTIONS = ("styles", "params", "states", "stingers")   # merged by name across includes
RESERVED = frozenset({"t", "beat", "bar", "true", "false", "on", "off", "min", "max", "clamp", "abs",
                      "time_in"})


@dataclass(frozen=True)
class Problem:
    file: str
    line: int         # 1-based
    col: int          # 1-based
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"


class MapError(Exception):
    """One or more problems in a state map, in file order (the files in the order their first
    problem was found, so the top map comes before its includes), then by line and column."""

    def __init__(self, problems: list[Problem]) -> None:
        files = list(dict.fromkeys(p.file for p in problems))
        problems = sorted(problems, key=lambda p: (files.index(p.file), p.line, p.col))
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("scorewright.state_maps").joinpath("schema.json").read_text())


@lru_cache(maxsize=1)
def include_schema() -> dict:
    """Included files hold sections only: no version, no required keys."""
    s = copy.deepcopy(schema())
    s["required"] = []
    s["properties"] = {k: v for k, v in s["properties"].items()
                       if k in (*SECTIONS, "rules", "events", "includes")}
    return s


def format_path(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass(frozen=True)
class _Mark:
    file: str
    line: int
    col: int
    quoted: bool = False


class Positions:
    """Where each value (and each mapping key) of the document sits, in which file."""

    def __init__(self) -> None:
        self.values: dict[Path_, _Mark] = {}
        self.keys: dict[Path_, _Mark] = {}
        self.problems: list[Problem] = []

    def problem(self, path: Path_, message: str, key: bool = False, col_shift: int = 0) -> None:
        table = self.keys if key else self.values
        probe = path
        while probe not in table and probe:
            probe = probe[:-1]
        mark = table.get(probe) or self.values.get(probe) or _Mark("?", 1, 1)
        self.problems.append(Problem(mark.file, mark.line, mark.col + col_shift, format_path(path), message))

    def where(self, path: Path_) -> str:
        m = self.keys.get(path) or self.values.get(path)
        return f"{m.file}:{m.line}:{m.col}" if m else "?"

    def graft(self, other: Positions, remap) -> None:
        """Take positions of an included file, with its paths renamed by `remap`."""
        for src, dst in ((other.values, self.values), (other.keys, self.keys)):
            for path, mark in src.items():
                if path:
                    dst[remap(path)] = mark
        self.problems += other.problems


_constructor = yaml.constructor.SafeConstructor()


def _mark(file: str, m: yaml.Mark) -> _Mark:
    quoted = bool(m.buffer and m.pointer < len(m.buffer) and m.buffer[m.pointer] in "'\"")
    return _Mark(file, m.line + 1, m.column + 1, quoted)


MAX_DEPTH = 32            # nesting a map needs is far below this
MAX_NODES = 200_000       # also stops alias bombs ("billion laughs")


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _TooBig(Exception):
    pass


def _to_python(node: yaml.Node, path: Path_, pos: Positions, file: str) -> Any:
    pos.values[path] = _mark(file, node.start_mark)
    if len(path) > MAX_DEPTH or len(pos.values) > MAX_NODES:
        raise _TooBig(f"the document is nested deeper than {MAX_DEPTH} levels or has more than "
                      f"{MAX_NODES} values (recursive or exploding aliases?)")
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        pos.problem(path, f"unsupported YAML tag {node.tag!r}; use plain lists and mappings")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _to_python(knode, path + ("<key>",), pos, file)
            if not isinstance(key, (str, int, float, bool)):
                pos.problem(path, "mapping keys must be plain names")
                continue
            key = str(key) if not isinstance(key, str) else key
            pos.keys[path + (key,)] = _mark(file, knode.start_mark)
            if key in out:
                pos.problem(path + (key,), f"duplicate key '{key}'", key=True)
            out[key] = _to_python(vnode, path + (key,), pos, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, path + (i,), pos, file) for i, v in enumerate(node.value)]
    try:
        value = _constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as e:
        pos.problem(path, f"unsupported YAML value ({e.problem}); use plain strings, numbers, "
                    "lists and mappings")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        pos.problem(path, f"bad value {value}: expected a finite number")
    return value


def parse_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """YAML text -> Python data plus positions. Raises MapError on syntax errors."""
    pos = Positions()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise MapError([Problem(file, line, col, "", f"YAML syntax: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise MapError([Problem(file, 1, 1, "", f"YAML: {e}")]) from None
    except RecursionError:
        raise MapError([Problem(file, 1, 1, "", "the document is nested too deeply")]) from None
    if node is None:
        raise MapError([Problem(file, 1, 1, "", "the file is empty; expected a state map")])
    try:
        return _to_python(node, (), pos, file), pos
    except (_TooBig, RecursionError) as e:
        raise MapError([Problem(file, 1, 1, "", str(e) or "the document is nested too deeply")]) from None


def _schema_problems(data: Any, pos: Positions, the_schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(the_schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - set(allowed)):
                pos.problem(path + (extra,), f"unknown key '{extra}'; expected one of: "
                            f"{', '.join(allowed)}", key=True)
        elif err.validator == "propertyNames":
            pos.problem(path + (err.instance,), f"bad name {err.instance!r}: names use letters, "
                        "digits and '_' and do not start with a digit", key=True)
        elif err.validator == "required":
            pos.problem(path, err.message.replace("is a required property", "is missing (required)"))
        else:
            value = json.dumps(err.instance, default=str)
            if len(value) > 60:
                value = value[:57] + "..."
            pos.problem(path, f"bad value {value}: {_expected(err)}")


def _expected(err: jsonschema.ValidationError) -> str:
    s = err.schema
    if "enum" in s:
        return "expected one of " + ", ".join(json.dumps(v) for v in s["enum"])
    if "const" in s:
        return f"expected {json.dumps(s['const'])}"
    if err.validator in ("anyOf", "oneOf"):
        return "expected " + (s.get("description") or "a different kind of value")
    if err.validator == "type":
        return f"expected {'a ' + s['type'] if isinstance(s['type'], str) else s['type']}"
    return err.message


def _drums(v: Any) -> int:
    return {True: DRUMS_ON, "on": DRUMS_ON, False: DRUMS_OFF, "off": DRUMS_OFF}.get(v, DRUMS_FREE)


def _generation(d: dict | None) -> Generation:
    return Generation(**(d or {}))


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
    file = _inside(base_dir, root_dir, spec, path, pos)
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


def _inside(base_dir: Path, root_dir: Path, rel: str, path: Path_, pos: Positions) -> Path | None:
    """A file named in a map: must exist and stay inside the top map's folder."""
    target = (base_dir / rel).resolve()
    if not target.is_relative_to(root_dir.resolve()):
        pos.problem(path, f"'{rel}' points outside the map's folder; keep referenced files "
                    "next to the map")
        return None
    if not target.is_file():
        pos.problem(path, f"file not found: '{rel}' (looked for {target})")
        return None
    return target


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


# -- includes -----------------------------------------------------------------------------------
def _read(path: Path, pos_for_errors: Positions | None = None, at: Path_ = ()) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        problem = Problem(str(path), 1, 1, "", f"cannot read the map: {e.strerror}")
        if pos_for_errors is None:
            raise MapError([problem]) from None
        pos_for_errors.problem(at, f"cannot read '{path}': {e.strerror}")
        return ""
    if len(raw) > MAX_MAP_BYTES:
        message = f"map is {len(raw)} bytes; the limit is {MAX_MAP_BYTES}"
        raise MapError([Problem(str(path), 1, 1, "", message)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        message = f"not UTF-8 text ({e.reason} at byte {e.start})"
        raise MapError([Problem(str(path), 1, 1, "", message)]) from None


def _merge_includes(data: dict, pos: Positions, path: Path, root_dir: Path,
                    stack: tuple[Path, ...], files: list[Path]) -> None:
    """Merge the sections of every included file into `data` (depth first, cycle-checked)."""
    for i, rel in enumerate(data.get("includes") or []):
        at = ("includes", i)
        target = _inside(path.parent, root_dir, rel, at, pos)
        if target is None:
            continue
        if target in stack:
            chain = " -> ".join(p.name for p in (*stack, target))
            pos.problem(at, f"include cycle: {chain}")
            continue
        if len(files) >= MAX_INCLUDES:
            pos.problem(at, f"more than {MAX_INCLUDES} included files")
            return
        files.append(target)
        inc, inc_pos = parse_yaml(_read(target, pos, at), str(target))
        if not isinstance(inc, dict):
            pos.problem(at, f"'{rel}' must be a mapping of sections")
            continue
        _schema_problems(inc, inc_pos, include_schema())
        _merge_includes(inc, inc_pos, target, root_dir, (*stack, target), files)
        n_rules, n_events = len(data.get("rules") or []), len(data.get("events") or [])

        def remap(p: Path_, n_rules=n_rules, n_events=n_events) -> Path_:
            if p[0] == "rules" and len(p) > 1:
                return ("rules", p[1] + n_rules, *p[2:])
            if p[0] == "events" and len(p) > 1:
                return ("events", p[1] + n_events, *p[2:])
            return p
        for section in SECTIONS:
            for name in (inc.get(section) or {}):
                if name in (data.get(section) or {}):
                    inc_pos.problem((section, name), f"duplicate {section[:-1]} '{name}': also defined at "
                                    f"{pos.where((section, name))}", key=True)
        pos.graft(inc_pos, remap)
        for section in SECTIONS:
            if inc.get(section):
                data[section] = {**(data.get(section) or {}), **inc[section]}
        for section in ("rules", "events"):
            if inc.get(section):
                data[section] = [*(data.get(section) or []), *inc[section]]


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
        markers=tuple(data.get("markers", ("beat", "bar", "transition", "stinger"))))


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
        audio = _inside(root, root, s["audio"], p + ("audio",), pos) if "audio" in s else None
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


def _expression_problems(data: dict, pos: Positions) -> None:
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


# -- entry points -------------------------------------------------------------------------------
def load_text(text: str, path: Path) -> StateMap:
    """Load a map from text; `path` names the file in errors and anchors relative paths."""
    data, pos = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise MapError([Problem(str(path), 1, 1, "", "expected a mapping with 'version' and 'styles'")])
    _schema_problems(data, pos, schema())
    files = [path.resolve()]
    if not pos.problems:
        _merge_includes(data, pos, path, path.parent, (path.resolve(),), files)
    if pos.problems:
        _expression_problems(data, pos)
        raise MapError(pos.problems)
    smap = build(data, pos, path, tuple(files))
    if pos.problems:
        raise MapError(pos.problems)
    return smap


def load(path: str | Path) -> StateMap:
    """Load and check a state map file. Raises MapError listing every problem found."""
    path = Path(path)
    return load_text(_read(path), path)


def bundled_map(name: str) -> Path:
    """Path of a map shipped with Scorewright (e.g. 'demo')."""
    return Path(str(resources.files("scorewright.state_maps").joinpath(f"{name}.yaml")))


def resolve_map(arg: str) -> Path:
    """A map argument: a file path, or the name of a bundled map."""
    p = Path(arg)
    if p.exists() or p.suffix in (".yaml", ".yml"):
        return p
    bundled = bundled_map(arg)
    return bundled if bundled.is_file() else p
