"""Where a self-contained server (`scorewright bundle`) keeps what the game ships with it.

    <bundle>/scorewright-server[.exe]   the executable (sys.executable when frozen)
    <bundle>/maps/                      the game's state maps, found by name or file name
    <bundle>/soundfont.sf2              the game's own SoundFont (optional; else TimGM6mb)
    <bundle>/models/                    MRT2 weights, for a bundle built with --mrt2 (optional)
"""

from __future__ import annotations

import sys
from pathlib import Path


def bundle_dir() -> Path | None:
    """The bundle's folder when running as a `scorewright bundle` executable, else None."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return None


def bundle_path(name: str) -> Path | None:
    """`name` inside the bundle's folder, if running from a bundle and it exists there."""
    base = bundle_dir()
    if base is None:
        return None
    path = base / name
    return path if path.exists() else None
