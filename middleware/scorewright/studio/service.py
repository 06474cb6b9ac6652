"""The studio's own messages (from web pages only): the map's text and controls, validation
and saving, and takes: record, replay, export to WAV.

The studio writes nothing but the map it serves and files in that map's folder (takes and
their WAV files go to `studio-takes/` there). A take starts from the top of the music (the
director and backend restart), so replaying it, or rendering it with `scorewright render MAP
--events TAKE --seed SEED`, gives the same audio.

Its work runs on the dispatcher thread, so it is bounded: map texts up to MAX_MAP_TEXT, a
low request rate per page (STUDIO_RATE), replays of at most MAX_REPLAY_PROMPTS prompts, one
export at a time (export.py), takes bounded in number, size and length (takes.py). A map
shipped with Scorewright or inside a bundle is never written (`read_only`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..audio import FRAME_SAMPLES
from ..engine import Engine
from ..frozen import bundle_dir
from ..protocol import Message, ProtocolError
from ..recording import load_recording
from ..statemap.inspect import describe_map
from ..statemap.load import MapError, load_text
from ..statemap.source import read_map_file
from ..transport.base import Peer, TokenBucket
from .export import Exporter, render_command
from .takes import TAKE, TakeRecorder, Takes

__all__ = ["TAKE", "StudioService"]
log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent.parent
MAX_MAP_TEXT = 64 * 1024             # the map text a page may validate or save (bytes, UTF-8)
MAX_PROBLEMS = 200                   # problems listed in a reply (and a line saying how many more)
MAX_REPLAY_PROMPTS = 32              # prompts a replayed take may hold (each is embedded first)
STUDIO_RATE, STUDIO_BURST = 2.0, 10  # studio requests per page: a second sustained, at once
TEXT_COST_BYTES = 16 * 1024          # a validate/save costs one more request per this much text


def shipped(path: Path) -> str | None:
    """Why the studio must not write at `path` (a map inside Scorewright's package or a
    `scorewright bundle`'s folder), else None."""
    name = path.stem
    if path.is_relative_to(PACKAGE):
        return (f"this is Scorewright's own copy of '{name}' ({path}); to edit it or record takes, "
                f"run `scorewright studio {name}`, which copies it to ./{name}/")
    bundle = bundle_dir()
    if bundle is not None and path.is_relative_to(bundle):
        return (f"this map ships inside the game's bundle ({path}); edit the project's own copy "
                "(`scorewright studio path/to/map.yaml`), then build the bundle again")
    return None


class StudioService:
    def __init__(self, engine: Engine, backend_name: str, push: Callable[[dict[str, Any]], None]) -> None:
        self.engine, self.backend_name, self.push = engine, backend_name, push
        self.map_path = Path(engine.director.map.path).resolve()
        self.takes = self.map_path.parent / "studio-takes"
        self.take_files = Takes(self.takes)
        self.read_only = shipped(self.map_path)
        self.recording: Path | None = None
        self.exporter = Exporter()
        self._buckets: weakref.WeakKeyDictionary[Peer, TokenBucket] = weakref.WeakKeyDictionary()
        self._ops: dict[str, Callable[[Peer, dict], dict[str, Any]]] = {
            "studio.open": self._open, "studio.validate": self._validate, "studio.save": self._save,
            "studio.record": self._record, "studio.replay": self._replay, "studio.export": self._export,
            "studio.seed": self._seed}

    # -- dispatch (the dispatcher thread) --
    def handle(self, peer: Peer, msg: Message) -> dict[str, Any]:
        cost = 1 + len(msg.fields.get("text", "")) // TEXT_COST_BYTES
        now = time.monotonic()
        bucket = self._buckets.setdefault(peer, TokenBucket(STUDIO_RATE, STUDIO_BURST, now))
        if not bucket.take(now, cost):
            raise ProtocolError("busy", f"too many studio requests from this page (at most "
                                f"{STUDIO_RATE:g} a second, bigger map texts count more); wait a moment "
                                "and try again", msg.id)
        return {"id": msg.id, **self._ops[msg.kind](peer, msg.fields)}

    def _open(self, peer: Peer, f: dict) -> dict[str, Any]:
        return {"type": "studio.map", "map": describe_map(self.engine.director), "text": self.map_text(),
                "file": self.map_path.name, "takes": self.take_files.names(),
                "recording": self._recording_name(), "seed": self.engine.director.seed,
                "read_only": self.read_only}

    def _validate(self, peer: Peer, f: dict) -> dict[str, Any]:
        return {"type": "studio.problems", "problems": self.problems(self._text(f))}

    def _save(self, peer: Peer, f: dict) -> dict[str, Any]:
        """Write the map (the server's file watch reloads it at the next bar; a broken edit
        keeps the last good map playing)."""
        self._writable("save")
        text = self._text(f)
        tmp = self.map_path.with_name(f".{self.map_path.name}.studio-tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.map_path)
        log.info("studio saved %s", self.map_path)
        return {"type": "studio.saved", "problems": self.problems(text)}

    def _record(self, peer: Peer, f: dict) -> dict[str, Any]:
        if f["cmd"] == "start":
            self._writable("record takes")
            if self.engine.recorder is not None and self.recording is None:
                raise ProtocolError("busy", "the server is already recording this session (serve --record)")
            self._stop_recording()
            path = self.take_files.new_path()
            origin, _ = self.engine.restart()
            self.engine.recorder = TakeRecorder(path, self.engine.director.map.name,
                                                self.engine.director.seed, origin, self._take_full)
            self.recording = path
            log.info("studio: recording %s from the top", path.name)
        else:
            self._stop_recording()
        return self._takes_message()

    def _replay(self, peer: Peer, f: dict) -> dict[str, Any]:
        take = self.take_files.readable(f["take"])
        try:
            items, _ = load_recording(take)
        except ValueError as e:         # empty, damaged, or not game state: say which record
            raise ProtocolError("bad_take", f"{e}; record it again") from None
        prompts = [i.message.fields for i in items
                   if i.message.kind == "prompt" and i.message.fields.get("weight", 1.0) != 0]
        if len(prompts) > MAX_REPLAY_PROMPTS:
            distinct = len({p.get("text") or bytes(p.get("audio", b"")) for p in prompts})
            raise ProtocolError("too_many_prompts", f"{take.name} holds {len(prompts)} prompts ({distinct} "
                                f"different); a replay embeds each before it starts, so it may hold at "
                                f"most {MAX_REPLAY_PROMPTS}; render it instead: scorewright render "
                                f"{self.map_path} --events {take}")
        self._stop_recording()
        _, frame = self.engine.restart(items)                      # the take's frame 0 in the stream
        return {"type": "studio.replaying", "take": f["take"], "messages": len(items), "frame": frame,
                "pos": frame * FRAME_SAMPLES}

    def _export(self, peer: Peer, f: dict) -> dict[str, Any]:
        self._writable("export takes")
        take = self.take_files.readable(f["take"])
        out = take.with_suffix(".wav")
        cmd = render_command(self.map_path, take, out, self.engine.director.seed, self.backend_name)
        self.exporter.start(peer, cmd, take, out)
        return {"type": "studio.exporting", "take": take.name, "wav": out.name}

    def _seed(self, peer: Peer, f: dict) -> dict[str, Any]:
        """Another seed: the music starts again from the top with it."""
        self.engine.director.seed = f["seed"]
        self.engine.restart()
        return {"type": "studio.seeded", "seed": f["seed"]}

    # -- helpers --
    def map_text(self) -> str:
        return read_map_file(self.map_path)

    def problems(self, text: str) -> list[dict[str, Any]]:
        """What `scorewright validate` says of this text, as the map file (includes resolve)."""
        try:
            load_text(text, self.map_path)
        except MapError as e:
            found = e.problems
        else:
            return []
        listed = [{"line": p.line, "col": p.col, "path": p.path, "message": p.message,
                   "file": Path(p.file).name, "text": str(p)} for p in found[:MAX_PROBLEMS]]
        if len(found) > MAX_PROBLEMS:
            rest, file = found[MAX_PROBLEMS], Path(found[MAX_PROBLEMS].file).name
            more = (f"... and {len(found) - MAX_PROBLEMS} more problems from here on (the first "
                    f"{MAX_PROBLEMS} are listed)")
            listed.append({"line": rest.line, "col": rest.col, "path": "", "message": more,
                           "file": file, "text": f"{file}:{rest.line}: {more}"})
        return listed

    @staticmethod
    def _text(f: dict) -> str:
        """A page's map text, refused over MAX_MAP_TEXT (checking it holds the dispatcher)."""
        size = len(f["text"].encode("utf-8", "surrogatepass"))
        if size > MAX_MAP_TEXT:
            raise ProtocolError("too_large", f"the map text is {size} bytes; the studio edits maps of up "
                                f"to {MAX_MAP_TEXT} bytes ({MAX_MAP_TEXT // 1024} KiB): edit a bigger map "
                                "in a text editor (saved changes still reload and show here)")
        return f["text"]

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ProtocolError("read_only", f"cannot {what}: {self.read_only}")

    def _takes_message(self, **extra: Any) -> dict[str, Any]:
        return {"type": "studio.takes", "takes": self.take_files.names(),
                "recording": self._recording_name(), **extra}

    def _recording_name(self) -> str | None:
        return self.recording.name if self.recording else None

    def _stop_recording(self) -> None:
        with self.engine.lock:
            recorder = self.engine.recorder if self.recording is not None else None
            if recorder is not None:
                self.engine.recorder = None
            name, self.recording = self._recording_name(), None
        if recorder is not None:
            recorder.close()
            log.info("studio: recorded %s", name)

    def _take_full(self, recorder: TakeRecorder, reason: str) -> None:
        """A take reached its limit (called under the engine's lock): it stops, and the pages
        hear why (from a thread of its own, off the lock)."""
        if self.engine.recorder is recorder:
            self.engine.recorder = None
        if self.recording == recorder.path:
            self.recording = None
        log.warning("studio: stopped recording %s: %s", recorder.path.name, reason)
        stopped = f"recording {recorder.path.name} stopped: {reason}; record another take to go on"
        threading.Thread(target=lambda: self.push(self._takes_message(stopped=stopped)),
                         name="sw-take-full", daemon=True).start()

    def close(self) -> None:
        self._stop_recording()
        self.exporter.close()
