"""Load a state map: YAML (with positions) -> JSON Schema check -> includes -> semantic checks
-> StateMap.

Every problem is reported as file:line:col, the key path, the bad value and what was expected;
all problems found are reported together.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..frozen import bundle_path
from .build import build, expression_problems
from .includes import merge_includes
from .model import StateMap
from .schema_check import schema, schema_problems
from .source import MapError, Problem, parse_yaml, read_map_file

__all__ = ["MapError", "Problem", "bundled_map", "load", "load_text", "parse_yaml", "resolve_map"]


# -- entry points -------------------------------------------------------------------------------
def load_text(text: str, path: Path) -> StateMap:
    """Load a map from text; `path` names the file in errors and anchors relative paths."""
    data, pos = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise MapError([Problem(str(path), 1, 1, "", "expected a mapping with 'version' and 'styles'")])
    schema_problems(data, pos, schema())
    files = [path.resolve()]
    if not pos.problems:
        merge_includes(data, pos, path, path.parent, (path.resolve(),), files)
    if pos.problems:
        expression_problems(data, pos)
        raise MapError(pos.problems)
    smap = build(data, pos, path, tuple(files))
    if pos.problems:
        raise MapError(pos.problems)
    return smap


def load(path: str | Path) -> StateMap:
    """Load and check a state map file. Raises MapError listing every problem found."""
    path = Path(path)
    return load_text(read_map_file(path), path)


def bundled_map(name: str) -> Path:
    """Path of a map shipped with Scorewright (e.g. 'demo')."""
    return Path(str(resources.files("scorewright.state_maps").joinpath(f"{name}.yaml")))


def resolve_map(arg: str) -> Path:
    """A map argument: a file path; in a `scorewright bundle` executable, a file name or name
    in the bundle's maps/ folder; or the name of a map shipped with Scorewright."""
    p = Path(arg)
    if p.is_file():
        return p
    shipped = bundle_path("maps")
    if shipped is not None:
        for candidate in (shipped / arg, shipped / f"{arg}.yaml", shipped / f"{arg}.yml"):
            if candidate.is_file():
                return candidate
    if p.suffix in (".yaml", ".yml"):
        return p
    bundled = bundled_map(arg)
    return bundled if bundled.is_file() else p
