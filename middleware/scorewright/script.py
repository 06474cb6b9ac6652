"""Event scripts: timed wire messages in YAML, for render, tests, benchmarks and the demo."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .engine import ScriptItem
from .protocol import SCHEMA, ProtocolError, check
from .recording import is_recording, load_recording
from .statemap.load import MapError, Problem, parse_yaml

TAIL_SECONDS = 8.0       # played after a script's last message, so its effect lands and is heard
NO_SCRIPT_SECONDS = 30.0


def script_seconds(items: list[ScriptItem]) -> float:
    """How long to render a script by default: its last message plus TAIL_SECONDS (enough for a
    change quantised to the next bar to land and fade), or NO_SCRIPT_SECONDS without one."""
    if not items:
        return NO_SCRIPT_SECONDS
    return max(item.t for item in items) + TAIL_SECONDS


@dataclass(frozen=True)
class Section:
    """A labelled moment of a script (the demo prints these)."""

    t: float
    label: str


def resolve_script(arg: str | Path) -> Path:
    """An event-script argument: a file path, or the name of a bundled map's script (e.g. demo)."""
    p = Path(arg)
    if p.exists() or p.suffix in (".yaml", ".yml", ".msgs"):
        return p
    bundled = Path(str(resources.files("scorewright.state_maps").joinpath("scripts", f"{arg}.yaml")))
    return bundled if bundled.is_file() else p


def recorded_seed(path: str | Path) -> int | None:
    """The seed a session recording was made with (None for a plain event script)."""
    path = resolve_script(path)
    if not (path.is_file() and is_recording(path)):
        return None
    try:
        return int(load_recording(path)[1].get("seed"))
    except (ValueError, TypeError):
        return None


def load_script(path: str | Path) -> tuple[list[ScriptItem], list[Section]]:
    """Parse `- {t: 1.5, set: {param: danger, value: 0.9}, section: "rising danger"}` items,
    or a session recording made by `serve --record`."""
    path = resolve_script(path)
    if path.is_file() and is_recording(path):
        try:
            return load_recording(path)[0], []
        except ValueError as e:
            raise MapError([Problem(str(path), 1, 1, "", str(e))]) from None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise MapError([Problem(str(path), 1, 1, "", f"cannot read the script: {e.strerror}")]) from None
    data, pos = parse_yaml(text, str(path))
    if not isinstance(data, list):
        pos.problem((), "an event script is a list of items like {t: 0.0, state: {group: area, value: cave}}")
        raise MapError(pos.problems)
    items, sections = [], []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            pos.problem((i,), f"bad item {entry!r}: expected a map with 't' and one message")
            continue
        t = entry.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
            pos.problem((i, "t"), f"bad time {t!r}: expected seconds >= 0")
            continue
        if isinstance(entry.get("section"), str):
            sections.append(Section(float(t), entry["section"]))
        kinds = [k for k in entry if k in SCHEMA]
        unknown = [k for k in entry if k not in SCHEMA and k not in ("t", "section")]
        if unknown:
            pos.problem((i, unknown[0]), f"unknown message type '{unknown[0]}'; expected one of: "
                        f"{', '.join(SCHEMA)}", key=True)
            continue
        for kind in kinds:
            body = entry[kind] if isinstance(entry[kind], dict) else {}
            try:
                items.append(ScriptItem(float(t), check({"type": kind, **body})))
            except ProtocolError as e:
                pos.problem((i, kind), str(e))
    if pos.problems:
        raise MapError(pos.problems)
    return items, sections
