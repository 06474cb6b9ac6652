"""What the `scorewright` command prints: one console, text that is never read as markup, and
logging that suits a terminal (rich) or a file or pipe (plain lines that never wrap)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

# soft_wrap: the terminal wraps long lines itself; a file or pipe gets them whole
console = Console(stderr=True, highlight=False, soft_wrap=True)


def say(text: str, style: str = "") -> None:
    """Print `text` as it is: brackets in paths, package extras or messages stay visible."""
    console.print(Text(text, style=style))


def note(label: str, text: str, style: str) -> None:
    """'label: text' with the label styled (e.g. 'error:' in red)."""
    console.print(Text.assemble((label, style), " ", text))


def error(text: str) -> None:
    note("error:", text, "red")


def warn(text: str) -> None:
    say(text, "yellow")


def setup_logging(level: str) -> None:
    """Rich log lines on a terminal; plain timestamped lines, never wrapped, elsewhere."""
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False, markup=False)
        fmt = "%(message)s"
    else:
        handler = logging.StreamHandler(console.file)
        fmt = "%(asctime)s %(levelname)-7s %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, datefmt="%H:%M:%S", handlers=[handler])
