"""Load a state map: YAML (with positions) -> JSON Schema check -> semantic checks -> StateMap.

Every problem is reported as file:line:col, the key path, the bad value and what was expected;
all problems of a file are collected and reported together.
"""

from __future__ import annotations

import json
import re
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
Path_ = tuple[Any, ...]


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
    """One or more problems in a state map."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("scorewright.state_maps").joinpath("schema.json").read_text())


def format_path(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class _Positions:
    """Where each value (and each mapping key) of the document sits in the file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[Path_, yaml.Mark] = {}
        self.keys: dict[Path_, yaml.Mark] = {}
        self.problems: list[Problem] = []

    def problem(self, path: Path_, message: str, key: bool = False, col_shift: int = 0) -> None:
        table = self.keys if key else self.values
        probe = path
        while probe not in table and probe:
            probe = probe[:-1]
        mark = table.get(probe) or self.values.get(probe)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.problems.append(Problem(self.file, line, col + col_shift, format_path(path), message))


_constructor = yaml.constructor.SafeConstructor()


def _to_python(node: yaml.Node, path: Path_, pos: _Positions) -> Any:
    pos.values[path] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _to_python(knode, path + ("<key>",), pos)
            if not isinstance(key, (str, int, float, bool)):
                pos.problem(path, "mapping keys must be plain names")
                continue
            key = str(key) if not isinstance(key, str) else key
            pos.keys[path + (key,)] = knode.start_mark
            if key in out:
                pos.problem(path + (key,), f"duplicate key '{key}'", key=True)
            out[key] = _to_python(vnode, path + (key,), pos)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, path + (i,), pos) for i, v in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> tuple[Any, _Positions]:
    """YAML text -> Python data plus positions. Raises MapError on syntax errors."""
    pos = _Positions(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise MapError([Problem(file, line, col, "", f"YAML syntax: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise MapError([Problem(file, 1, 1, "", f"YAML: {e}")]) from None
    if node is None:
        raise MapError([Problem(file, 1, 1, "", "the file is empty; expected a state map")])
    data = _to_python(node, (), pos)
    return data, pos


def _schema_problems(data: Any, pos: _Positions) -> None:
    validator = jsonschema.Draft202012Validator(schema())
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
    return Transition(at=d.get("at", base.at), fade_ms=float(d.get("fade_ms", base.fade_ms)))


_NOTE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d)$")


def note_number(name: str | int) -> int | None:
    """'C4' -> 60, 'F#3' -> 54, 64 -> 64, 'rest' / '-' -> None."""
    if isinstance(name, int):
        return name
    if name in ("rest", "-"):
        return None
    import pretty_midi
    return int(pretty_midi.note_name_to_number(name))


def _motif(spec: Any, base_dir: Path, path: Path_, pos: _Positions) -> Motif | None:
    if isinstance(spec, list):
        pitches = [note_number(n) for n in spec]
        return Motif(tuple((float(i), 1.0, p) for i, p in enumerate(pitches) if p is not None),
                     float(len(pitches)))
    file = _inside(base_dir, spec, path, pos)
    if file is None:
        return None
    try:
        import mido
        mid = mido.MidiFile(str(file))
    except (OSError, ValueError, EOFError) as e:
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
    return Motif(tuple(sorted(notes)), length)


def _inside(base_dir: Path, rel: str, path: Path_, pos: _Positions) -> Path | None:
    """A file named in the map: must exist and stay inside the map's folder."""
    target = (base_dir / rel).resolve()
    if not target.is_relative_to(base_dir.resolve()):
        pos.problem(path, f"'{rel}' points outside the map's folder; keep referenced files "
                    "next to the map")
        return None
    if not target.is_file():
        pos.problem(path, f"file not found: '{rel}' (looked for {target})")
        return None
    return target


def _known_names(data: dict) -> dict[str, str]:
    known = {name: "number" for name in (data.get("params") or {})}
    for group, spec in (data.get("states") or {}).items():
        values = spec["values"] if isinstance(spec, dict) else spec
        known[group] = "state:" + "|".join(values)
    known.update({"t": "number", "beat": "number", "bar": "number"})
    return known


def _compile(text: Any, known: dict[str, str], path: Path_, pos: _Positions):
    try:
        return compile_expr(text, known)
    except ExprError as e:
        mark = pos.values.get(path)
        quoted = bool(mark and mark.buffer and mark.pointer < len(mark.buffer)
                      and mark.buffer[mark.pointer] in "'\"")
        pos.problem(path, f"bad expression {text!r}: {e}", col_shift=e.col + int(quoted))
        return None


def build(data: dict, pos: _Positions, path: Path) -> StateMap:
    """Semantic checks and construction; assumes the schema check passed."""
    base_dir = path.parent
    known = _known_names(data)
    styles: dict[str, Style] = {}
    for name, s in data["styles"].items():
        p = ("styles", name)
        if ("prompt" in s) == ("audio" in s):
            pos.problem(p, "a style needs exactly one of 'prompt' (text) or 'audio' (a WAV file)")
            continue
        audio = _inside(base_dir, s["audio"], p + ("audio",), pos) if "audio" in s else None
        styles[name] = Style(name, s.get("prompt"), audio, float(s.get("weight", 0.0)))
    params = {}
    for name, d in (data.get("params") or {}).items():
        lo, hi = float(d.get("min", 0.0)), float(d.get("max", 1.0))
        default = float(d.get("default", lo))
        if lo >= hi:
            pos.problem(("params", name, "max"), f"max ({hi}) must be greater than min ({lo})")
        elif not lo <= default <= hi:
            pos.problem(("params", name, "default"), f"default {default} is outside [{lo}, {hi}]")
        params[name] = Param(name, lo, hi, default, float(d.get("smooth_ms", 0.0)))
    states, defaults = {}, {}
    for group, spec in (data.get("states") or {}).items():
        values = tuple(spec["values"] if isinstance(spec, dict) else spec)
        default = spec.get("default", values[0]) if isinstance(spec, dict) else values[0]
        if default not in values:
            pos.problem(("states", group, "default"), f"default {default!r} is not one of {list(values)}")
        states[group], defaults[group] = values, default
    clash = set(params) & set(states)
    for name in sorted(clash):
        pos.problem(("states", name), f"'{name}' is both a param and a state; rename one", key=True)
    transition = _transition(data.get("transition"), Transition())
    rules = []
    for i, r in enumerate(data.get("rules") or []):
        p = ("rules", i)
        when = _compile(r["when"], known, p + ("when",), pos)
        blend = {}
        for style, w in (r.get("blend") or {}).items():
            if style not in data["styles"]:
                pos.problem(p + ("blend", style), f"unknown style '{style}'; defined styles: "
                            f"{', '.join(data['styles'])}", key=True)
            blend[style] = _compile(w, known, p + ("blend", style), pos)
        motif = _motif(r["notes"], base_dir, p + ("notes",), pos) if "notes" in r else None
        if when is not None and None not in blend.values():
            rules.append(Rule(r.get("name", f"rule{i + 1}"), when, blend,
                              _drums(r["drums"]) if "drums" in r else None, motif, r.get("tempo"),
                              _generation(r.get("generation")),
                              _transition(r.get("transition"), transition)))
    names = [r.name for r in rules]
    for i, n in enumerate(names):
        if n in names[:i]:
            pos.problem(("rules", i, "name"), f"duplicate rule name '{n}'")
    stingers = {}
    for event, s in (data.get("stingers") or {}).items():
        p = ("stingers", event)
        if ("prompt" in s) == ("style" in s):
            pos.problem(p, "a stinger needs exactly one of 'prompt' or 'style'")
            continue
        if "style" in s and s["style"] not in styles:
            pos.problem(p + ("style",), f"unknown style '{s['style']}'")
            continue
        style = s.get("style") or f"stinger_{event}"
        if "prompt" in s:
            styles[style] = Style(style, s["prompt"], None, 0.0)
        motif = _motif(s["notes"], base_dir, p + ("notes",), pos) if "notes" in s else None
        beats, bars = s.get("beats"), s.get("bars", None if "beats" in s else 1)
        stingers[event] = Stinger(event, style, beats, bars, s.get("at", "beat"),
                                  float(s.get("fade_ms", 150.0)),
                                  _drums(s["drums"]) if "drums" in s else None, motif)
    backend = data.get("backend", "synth")
    prefer, fallback = (backend, None) if isinstance(backend, str) else (
        backend["prefer"], backend.get("fallback"))
    tempo = data.get("tempo", "auto")
    return StateMap(
        path=path, name=data.get("name", path.stem), styles=styles, params=params, states=states,
        state_defaults=defaults, events=frozenset(data.get("events") or []) | frozenset(stingers),
        rules=tuple(rules), stingers=stingers, backend_prefer=prefer, backend_fallback=fallback,
        seed=int(data.get("seed", 0)), tempo=None if tempo == "auto" else float(tempo),
        beats_per_bar=int(data.get("beats_per_bar", 4)), drums=_drums(data.get("drums", "free")),
        generation=_generation(data.get("generation")), transition=transition)


def load_text(text: str, path: Path) -> StateMap:
    """Load a map from text; `path` names the file in errors and anchors relative paths."""
    data, pos = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise MapError([Problem(str(path), 1, 1, "", "expected a mapping with 'version' and 'styles'")])
    _schema_problems(data, pos)
    if pos.problems:
        raise MapError(pos.problems)
    smap = build(data, pos, path)
    if pos.problems:
        raise MapError(pos.problems)
    return smap


def load(path: str | Path) -> StateMap:
    """Load and check a state map file. Raises MapError listing every problem found."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        problem = Problem(str(path), 1, 1, "", f"cannot read the map: {e.strerror}")
        raise MapError([problem]) from None
    if len(raw) > MAX_MAP_BYTES:
        message = f"map is {len(raw)} bytes; the limit is {MAX_MAP_BYTES}"
        raise MapError([Problem(str(path), 1, 1, "", message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        message = f"not UTF-8 text ({e.reason} at byte {e.start})"
        raise MapError([Problem(str(path), 1, 1, "", message)]) from None
    return load_text(text, path)


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
