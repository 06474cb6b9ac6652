"""A state map's source files: YAML with the position of every value, problems located at
file:line:col, and the files a map may name (inside its folder, regular, bounded)."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
    """One or more problems in a state map, in file order (the files in the order their first
    problem was found, so the top map comes before its includes), then by line and column."""

    def __init__(self, problems: list[Problem]) -> None:
        files = list(dict.fromkeys(p.file for p in problems))
        problems = sorted(problems, key=lambda p: (files.index(p.file), p.line, p.col))
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems




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
        self.named: list[Path] = []        # files the map names (includes, motifs, audio)

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
        self.named += other.named


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
            if isinstance(key, bool):        # YAML 1.1 reads on/off/yes/no/true/false as booleans
                pos.problems.append(Problem(file, knode.start_mark.line + 1, knode.start_mark.column + 1,
                                            format_path(path), f"the name {knode.value!r} is a YAML boolean "
                                            "(on/off/yes/no/true/false): quote it or pick another name"))
                continue
            if not isinstance(key, (str, int, float)):
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



def read_map_file(path: Path, pos_for_errors: Positions | None = None, at: Path_ = ()) -> str:
    """The UTF-8 text of a map or an included file. Only a regular file of at most MAX_MAP_BYTES
    is read: a FIFO, a device (/dev/zero) or a folder is refused before anything is read, and the
    read stops at the limit. Problems go to `pos_for_errors` (an include) or raise MapError."""
    def refuse(message: str) -> str:
        if pos_for_errors is None:
            raise MapError([Problem(str(path), 1, 1, "", message)])
        pos_for_errors.problem(at, f"'{path}': {message}")
        return ""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))   # a FIFO must not block
    except OSError as e:
        return refuse(f"cannot read the map: {e.strerror}")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MAP_BYTES:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            return refuse("not a regular file (a map is a YAML text file)")
        return refuse(f"map is {info.st_size} bytes; the limit is {MAX_MAP_BYTES}")
    with os.fdopen(fd, "rb") as f:
        raw = f.read(MAX_MAP_BYTES + 1)
    if len(raw) > MAX_MAP_BYTES:
        return refuse(f"map is over {MAX_MAP_BYTES} bytes; that is the limit")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return refuse(f"not UTF-8 text ({e.reason} at byte {e.start})")


def inside_map_folder(base_dir: Path, root_dir: Path, rel: str, path: Path_, pos: Positions) -> Path | None:
    """A file named in a map: must exist and stay inside the top map's folder."""
    target = (base_dir / rel).resolve()
    if not target.is_relative_to(root_dir.resolve()):
        pos.problem(path, f"'{rel}' points outside the map's folder; keep referenced files "
                    "next to the map")
        return None
    if not target.is_file():
        pos.problem(path, f"file not found: '{rel}' (looked for {target})")
        return None
    pos.named.append(target)
    return target

