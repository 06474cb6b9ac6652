"""`scorewright validate`: every problem of every map at once, in file order, on stdout."""

from __future__ import annotations

import argparse

from ..statemap.load import MapError, load, resolve_map
from ..statemap.model import StateMap


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(smap: StateMap) -> str:
    """'3 styles, 1 param, 1 state group, 2 rules, 1 stinger' (stingers' own styles not counted)."""
    styles = sum(1 for s in smap.styles.values() if s.stinger is None)
    return ", ".join([plural(styles, "style"), plural(len(smap.params), "param"),
                      plural(len(smap.states), "state group"), plural(len(smap.rules), "rule"),
                      plural(len(smap.stingers), "stinger")])


def cmd_validate(args: argparse.Namespace) -> int:
    bad_maps, problems = 0, 0
    for m in args.maps:
        try:
            smap = load(resolve_map(m))
        except MapError as e:
            for p in e.problems:
                print(p)
            bad_maps, problems = bad_maps + 1, problems + len(e.problems)
            continue
        print(f"ok {m}: {summary(smap)}")
    if bad_maps:
        print(f"{plural(problems, 'problem')} in {bad_maps} of {plural(len(args.maps), 'map')}")
    return 1 if bad_maps else 0


def add_parsers(sub) -> None:
    v = sub.add_parser("validate", help="check state maps; every problem as file:line:col")
    v.add_argument("maps", nargs="+", help="state map files (or names of bundled maps)")
    v.set_defaults(func=cmd_validate)
