"""`scorewright bundle`: a self-contained server for this platform that a game ships and its
engine launches (no Python on the player's machine). See docs/bundle.md."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

from .output import error, say


def default_out() -> Path:
    return Path("dist") / f"scorewright-server-{sys.platform}-{platform.machine().lower()}"


def cmd_bundle(args: argparse.Namespace) -> int:
    from ..bundle import BundleError
    from ..bundle.build import BundleOptions, build, result_json
    opts = BundleOptions(out=args.out or default_out(), maps=list(args.map), mrt2=args.mrt2,
                         soundfont=args.soundfont, full_precision=args.full_precision,
                         work=args.work, check=not args.no_check)
    try:
        result = build(opts, say)
    except BundleError as e:
        error(str(e))
        return 2
    say(f"built {result.folder} in {result.seconds:.0f} s: {result.bytes / 1e6:.0f} MB in "
        f"{result.files} files, {result.licences} licences in licenses/", "green")
    say(f"run it: {result.executable} serve {result.maps[0] if result.maps else 'demo'}")
    if args.json:
        print(result_json(result))
    return 0


def add_parsers(sub) -> None:
    b = sub.add_parser("bundle", help="build a self-contained server (no Python needed) to ship with a game")
    b.add_argument("--out", type=Path, default=None,
                   help=f"folder to build into (replaced if it holds a bundle; default {default_out()}); "
                        "e.g. Assets/StreamingAssets/Scorewright for Unity")
    b.add_argument("--map", action="append", type=Path, default=[], metavar="FILE_OR_FOLDER",
                   help="a state map the game ships, or a folder of them (repeat for more); the "
                        "files they name (includes, motifs, audio) come along")
    b.add_argument("--mrt2", action="store_true",
                   help="also bundle the mrt2 backend (PyTorch; large). Weights are not bundled: "
                        "they are looked up in $SCOREWRIGHT_MODELS, then the bundle's models/ folder")
    b.add_argument("--soundfont", type=Path, default=None, metavar="SF2",
                   help="ship this SoundFont instead of TimGM6mb (GPL-2.0)")
    b.add_argument("--full-precision", action="store_true",
                   help="keep the style embedder's float32 weights (+44 MB; float16 by default)")
    b.add_argument("--work", type=Path, default=None, help="keep PyInstaller's work files here")
    b.add_argument("--no-check", action="store_true", help="do not run the built server once")
    b.add_argument("--json", action="store_true", help="print the result as one JSON line on stdout")
    b.set_defaults(func=cmd_bundle)
