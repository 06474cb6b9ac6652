"""The studio's takes: `studio-takes/take-YYYYMMDD-HHMMSS.msgs` next to the map, bounded in
number (MAX_TAKES), and each in size and length (a recording that reaches either stops itself
and the page is told)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from ..audio import FRAME_SECONDS
from ..protocol import Message, ProtocolError
from ..recording import Recorder

TAKE = re.compile(r"^take-[0-9]{8}-[0-9]{6}(-[0-9]+)?\.msgs$")
MAX_TAKES = 500                      # takes in studio-takes/: `record start` is refused past it
MAX_TAKE_BYTES = 8 << 20             # one take's file: recording stops there; replay refuses bigger
MAX_TAKE_SECONDS = 30 * 60           # one take's length: recording stops


class Takes:
    """The take files of one map's `studio-takes/` folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def all_names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if TAKE.match(p.name))

    def names(self) -> list[str]:
        """The newest MAX_TAKES takes, oldest first (what a reply lists)."""
        return self.all_names()[-MAX_TAKES:]

    def new_path(self) -> Path:
        """A fresh take's path; refused when the folder already holds MAX_TAKES takes."""
        count = len(self.all_names())
        if count >= MAX_TAKES:
            raise ProtocolError("too_many_takes", f"{self.folder} holds {count} takes; the studio keeps "
                                f"at most {MAX_TAKES}: delete some takes in studio-takes/, then record again")
        self.folder.mkdir(exist_ok=True)
        stem = time.strftime("take-%Y%m%d-%H%M%S")
        path, n = self.folder / f"{stem}.msgs", 1
        while path.exists():
            path, n = self.folder / f"{stem}-{n}.msgs", n + 1
        return path

    def find(self, name: str) -> Path:
        """An existing take by name (only names like take-….msgs, only in this folder)."""
        path = self.folder / name
        if not TAKE.match(name) or not path.is_file():
            shown = self.names()[-20:]
            raise ProtocolError("unknown_take", f"no take named {name!r}; newest takes: "
                                f"{', '.join(shown) or 'none yet'}")
        return path

    def readable(self, name: str) -> Path:
        """`find`, and refuse a take file over MAX_TAKE_BYTES (one copied in from elsewhere)."""
        path = self.find(name)
        size = path.stat().st_size
        if size > MAX_TAKE_BYTES:
            raise ProtocolError("too_large", f"{name} is {size} bytes; the studio replays takes up to "
                                f"{MAX_TAKE_BYTES} bytes (render a bigger one with `scorewright render "
                                "MAP --events TAKE`)")
        return path


class TakeRecorder(Recorder):
    """A Recorder that stops before MAX_TAKE_BYTES or MAX_TAKE_SECONDS: it closes its file and
    calls `on_full(self, reason)` once (under the engine's lock: `on_full` must not take it)."""

    def __init__(self, path: Path, map_name: str, seed: int, origin: int,
                 on_full: Callable[[TakeRecorder, str], None]) -> None:
        self.full: str | None = None             # why it stopped
        super().__init__(path, map_name, seed, origin)
        self.path, self.on_full = path, on_full
        self.max_frames = int(MAX_TAKE_SECONDS / FRAME_SECONDS)

    def _write(self, obj: dict) -> None:
        data = self._packer.pack(obj)
        if self._f.tell() + len(data) > MAX_TAKE_BYTES:
            self.full = f"it reached the biggest take, {MAX_TAKE_BYTES >> 20} MiB of messages"
            return
        self._f.write(data)
        self._f.flush()

    def __call__(self, frame: int, msg: Message) -> None:
        if self.full:
            return
        if frame - self.origin > self.max_frames:
            self.full = f"it reached the longest take, {MAX_TAKE_SECONDS // 60} minutes"
        else:
            super().__call__(frame, msg)
        if self.full:
            self.close()
            self.on_full(self, self.full)
