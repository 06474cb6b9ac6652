"""Includes: a map's sections spread over several files, merged depth first (cycle-checked,
every file inside the top map's folder, every position kept)."""

from __future__ import annotations

from pathlib import Path

from .schema_check import SECTIONS, include_schema, schema_problems
from .source import Path_, Positions, inside_map_folder, parse_yaml, read_map_file

MAX_INCLUDES = 64


def merge_includes(data: dict, pos: Positions, path: Path, root_dir: Path,
                    stack: tuple[Path, ...], files: list[Path]) -> None:
    """Merge the sections of every included file into `data` (depth first, cycle-checked)."""
    for i, rel in enumerate(data.get("includes") or []):
        at = ("includes", i)
        target = inside_map_folder(path.parent, root_dir, rel, at, pos)
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
        inc, inc_pos = parse_yaml(read_map_file(target, pos, at), str(target))
        if not isinstance(inc, dict):
            pos.problem(at, f"'{rel}' must be a mapping of sections")
            continue
        schema_problems(inc, inc_pos, include_schema())
        merge_includes(inc, inc_pos, target, root_dir, (*stack, target), files)
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

