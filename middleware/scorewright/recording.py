"""Session recordings: every game message `serve` received, with the director frame it applied
to, as a stream of msgpack maps. `render MAP --events session.msgs` replays one exactly."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import BinaryIO

import msgpack

from .engine import GAME_STATE_KINDS, ScriptItem
from .protocol import Message, ProtocolError, check

MAGIC = {"scorewright_recording": 1}


class Recorder:
    """Appends {frame, t, msg} records; flushed per message so a crash loses nothing."""

    def __init__(self, path: str | Path, map_name: str, seed: int, origin: int = 0) -> None:
        """`origin`: the engine's step count at the first frame of the recording (a take
        recorded from a restart of the music counts its frames from there)."""
        self.origin = origin
        self._f: BinaryIO = open(path, "wb")
        self._packer = msgpack.Packer(use_bin_type=True)
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._write({**MAGIC, "map": map_name, "seed": seed})

    def _write(self, obj: dict) -> None:
        self._f.write(self._packer.pack(obj))
        self._f.flush()

    def __call__(self, frame: int, msg: Message) -> None:
        record = {"type": msg.kind, **msg.fields}
        with self._lock:
            self._write({"frame": frame - self.origin, "t": round(time.monotonic() - self._t0, 4),
                         "msg": record})

    def close(self) -> None:
        with self._lock:
            self._f.close()


def is_recording(path: str | Path) -> bool:
    """True for a file written by Recorder (checked by its first record)."""
    with open(path, "rb") as f:
        head = f.read(64)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(head)
    try:
        first = next(unpacker)
    except (StopIteration, ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return False
    return isinstance(first, dict) and first.get("scorewright_recording") == 1


def load_recording(path: str | Path) -> tuple[list[ScriptItem], dict]:
    """Records -> script items keyed by director frame, and the header (map, seed). Raises
    ValueError naming the file and record for anything but a recording of game-state messages."""
    if not is_recording(path):
        raise ValueError(f"{path} is empty or not a Scorewright recording (record it again)")
    items: list[ScriptItem] = []
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False)
        header = next(unpacker)
        try:
            for rec in unpacker:
                msg = check(rec["msg"])
                if msg.kind not in GAME_STATE_KINDS:
                    raise ProtocolError("unsupported", f"'{msg.kind}' is not a game-state message")
                items.append(ScriptItem(float(rec["t"]), msg, int(rec["frame"])))
        except (KeyError, TypeError, ValueError, ProtocolError, msgpack.UnpackException) as e:
            raise ValueError(f"{path}: record {len(items) + 1} is damaged: {e}") from None
    return items, header
