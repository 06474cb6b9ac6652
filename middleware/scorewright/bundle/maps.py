"""The maps a game ships in its bundle (`scorewright bundle --map FILE_OR_FOLDER`), copied into
the bundle's maps/ folder with every file they name (includes, MIDI motifs, audio styles), at
the same places relative to the map, so they load there as they did in the project.

    --map music/game.yaml    maps/game.yaml, and e.g. maps/motifs/theme.mid if it names it
    --map music/             every map at the top of music/ (*.yaml, *.yml), and all the
                             files they name

Every map is loaded first: a map with problems stops the build before PyInstaller runs.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from ..statemap.load import MapError, load
from . import BundleError


def _maps_in(arg: Path) -> list[Path]:
    if not arg.is_dir():
        return [arg]
    found = sorted([*arg.glob("*.yaml"), *arg.glob("*.yml")])
    if not found:
        raise BundleError(f"--map {arg}: no map files (*.yaml) at the top of that folder")
    return found


def _copy(src: Path, dest: Path) -> None:
    if dest.exists():
        if filecmp.cmp(src, dest, shallow=False):
            return
        raise BundleError(f"two different files would both be maps/{dest.name}: {src} and one "
                          "copied before it; rename one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def copy_maps(args: list[Path], dest: Path) -> list[str]:
    """Copy the maps and what they name into `dest`; returns the maps' paths relative to it.
    Raises MapError with every problem of every map."""
    problems, names = [], []
    loaded = []
    for arg in args:
        for path in _maps_in(arg):
            try:
                loaded.append((path, load(path)))
            except MapError as e:
                problems += e.problems
    if problems:
        raise MapError(problems)
    for path, smap in loaded:
        root = path.resolve().parent
        _copy(path, dest / path.name)
        for asset in smap.assets:
            _copy(asset, dest / asset.relative_to(root))
        names.append(path.name)
    return names
