"""`scorewright models list | verify | download`: the MRT2 files (the official folder layout)."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from .output import console, error, say


def cmd_models(args: argparse.Namespace) -> int:
    from ..backends.mrt2 import models
    if args.action == "download":
        for size in args.sizes:
            try:
                models.download(size, progress=say)
            except Exception as e:  # network, auth, disk: say what failed and where
                error(f"download of {size} failed: {e}")
                return 2
        say(f"done; files under {models.root()}")
        return 0
    check = args.action == "verify"
    if check:
        try:
            import torch  # noqa: F401
        except ImportError:
            error("verifying checkpoints needs PyTorch: pip install 'scorewright[mrt2]'")
            return 2
    ok = True
    for size in args.sizes:
        rows = models.verify(size) if check else models.status(size)
        table = Table(title=Text(f"MRT2 {size} — {models.root()}"), title_justify="left")
        for col in ("file", "size", "status"):
            table.add_column(col)
        for r in rows:
            if not r.present:
                state = Text(f"missing (optional: {r.optional})" if r.optional else "missing",
                             "yellow" if r.optional else "red")
            else:
                state = Text(r.problem, "red") if r.problem else Text("ok", "green") if check \
                    else Text("present")
            ok &= (r.present or bool(r.optional)) and not r.problem
            size_text = f"{r.bytes / 1e6:,.1f} MB" if r.present else "-"
            table.add_row(Text(str(r.path.relative_to(models.root()))), size_text, state)
        console.print(table)
    if not ok:
        say("Missing files: `scorewright models download SIZE` (needs internet), or set "
            "SCOREWRIGHT_MODELS to a folder with the official layout.")
    return 0 if ok or not check else 1


def add_parsers(sub) -> None:
    m = sub.add_parser("models", help="MRT2 weights: list what is here, verify it, or download it")
    m.add_argument("action", choices=["list", "verify", "download"], help="what to do")
    m.add_argument("sizes", nargs="*", default=["small", "base"], metavar="SIZE",
                   help="small and/or base (default: both; base is 2.4 B parameters)")
    m.set_defaults(func=cmd_models)
