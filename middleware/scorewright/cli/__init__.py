"""The `scorewright` command: demo, serve, render, trace, validate, models, doctor, bundle."""

from __future__ import annotations

import argparse
import sys

from ..backends.base import BACKENDS, BackendUnavailable
from ..statemap.load import MapError
from . import bundle, doctor, models, render, serve, validate
from .output import console, error, setup_logging
from .render import describe

__all__ = ["build_parser", "console", "describe", "main"]


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (where it has a meaningful one)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text \
                and action.option_strings:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An argument parser (and, through add_subparsers, subcommands) with HelpFormatter."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="scorewright", description="Adaptive music middleware for games.")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="how much the server and the backends log")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    backends = list(BACKENDS)
    render.add_parsers(sub, backends)
    serve.add_parsers(sub, backends)
    validate.add_parsers(sub)
    models.add_parsers(sub)
    doctor.add_parsers(sub)
    bundle.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args)
    except MapError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    except BackendUnavailable as e:
        error(str(e))
        return 2
    except OSError as e:
        error(str(e))
        return 2
    except KeyboardInterrupt:
        return 130
