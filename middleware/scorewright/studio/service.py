"""The studio's own messages (from web pages only): the map's text and controls, validation
and saving, and takes: record, replay, export to WAV.

The studio writes nothing but the map it serves and files in that map's folder (takes and
their WAV files go to `studio-takes/` there). A take starts from the top of the music (the
director and backend restart), so replaying it, or rendering it with `scorewright render MAP
--events TAKE --seed SEED`, gives the same audio.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..audio import FRAME_SAMPLES
from ..engine import Engine
from ..protocol import Message, ProtocolError, encode
from ..recording import Recorder, load_recording
from ..statemap.inspect import describe_map
from ..statemap.load import MapError, load_text
from ..statemap.source import read_map_file
from ..transport.base import Peer

log = logging.getLogger(__name__)
TAKE = re.compile(r"^take-[0-9]{8}-[0-9]{6}(-[0-9]+)?\.msgs$")


class StudioService:
    def __init__(self, engine: Engine, backend_name: str, push: Callable[[dict[str, Any]], None]) -> None:
        self.engine, self.backend_name, self.push = engine, backend_name, push
        self.map_path = Path(engine.director.map.path).resolve()
        self.takes = self.map_path.parent / "studio-takes"
        self.recording: Path | None = None
        self._ops: dict[str, Callable[[Peer, dict], dict[str, Any]]] = {
            "studio.open": self._open, "studio.validate": self._validate, "studio.save": self._save,
            "studio.record": self._record, "studio.replay": self._replay, "studio.export": self._export,
            "studio.seed": self._seed}

    # -- dispatch (the dispatcher thread) --
    def handle(self, peer: Peer, msg: Message) -> dict[str, Any]:
        return {"id": msg.id, **self._ops[msg.kind](peer, msg.fields)}

    def _open(self, peer: Peer, f: dict) -> dict[str, Any]:
        return {"type": "studio.map", "map": describe_map(self.engine.director), "text": self.map_text(),
                "file": self.map_path.name, "takes": self.take_names(), "recording": self._recording_name(),
                "seed": self.engine.director.seed}

    def _validate(self, peer: Peer, f: dict) -> dict[str, Any]:
        return {"type": "studio.problems", "problems": self.problems(f["text"])}

    def _save(self, peer: Peer, f: dict) -> dict[str, Any]:
        """Write the map (the server's file watch reloads it at the next bar; a broken edit
        keeps the last good map playing)."""
        tmp = self.map_path.with_name(f".{self.map_path.name}.studio-tmp")
        tmp.write_text(f["text"], encoding="utf-8")
        os.replace(tmp, self.map_path)
        log.info("studio saved %s", self.map_path)
        return {"type": "studio.saved", "problems": self.problems(f["text"])}

    def _record(self, peer: Peer, f: dict) -> dict[str, Any]:
        if f["cmd"] == "start":
            if self.engine.recorder is not None and self.recording is None:
                raise ProtocolError("busy", "the server is already recording this session (serve --record)")
            self._stop_recording()
            self.takes.mkdir(exist_ok=True)
            path = self._new_take_path()
            origin, _ = self.engine.restart()
            self.engine.recorder = Recorder(path, self.engine.director.map.name, self.engine.director.seed,
                                            origin)
            self.recording = path
            log.info("studio: recording %s from the top", path.name)
        else:
            self._stop_recording()
        return {"type": "studio.takes", "takes": self.take_names(), "recording": self._recording_name()}

    def _replay(self, peer: Peer, f: dict) -> dict[str, Any]:
        items, _ = load_recording(self._take(f["take"]))
        self._stop_recording()
        _, frame = self.engine.restart(items)                      # the take's frame 0 in the stream
        return {"type": "studio.replaying", "take": f["take"], "messages": len(items), "frame": frame,
                "pos": frame * FRAME_SAMPLES}

    def _export(self, peer: Peer, f: dict) -> dict[str, Any]:
        take = self._take(f["take"])
        out = take.with_suffix(".wav")
        threading.Thread(target=self._render, args=(peer, take, out), name="sw-export", daemon=True).start()
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
            return [{"line": p.line, "col": p.col, "path": p.path, "message": p.message,
                     "file": Path(p.file).name, "text": str(p)} for p in e.problems]
        return []

    def take_names(self) -> list[str]:
        if not self.takes.is_dir():
            return []
        return sorted(p.name for p in self.takes.iterdir() if TAKE.match(p.name))

    def _new_take_path(self) -> Path:
        stem = time.strftime("take-%Y%m%d-%H%M%S")
        path, n = self.takes / f"{stem}.msgs", 1
        while path.exists():
            path, n = self.takes / f"{stem}-{n}.msgs", n + 1
        return path

    def _take(self, name: str) -> Path:
        path = self.takes / name
        if not TAKE.match(name) or not path.is_file():
            raise ProtocolError("unknown_take", f"no take named {name!r}; takes: "
                                f"{', '.join(self.take_names()) or 'none yet'}")
        return path

    def _recording_name(self) -> str | None:
        return self.recording.name if self.recording else None

    def _stop_recording(self) -> None:
        if self.recording is not None and self.engine.recorder is not None:
            recorder, self.engine.recorder = self.engine.recorder, None
            recorder.close()
            log.info("studio: recorded %s", self.recording.name)
        self.recording = None

    def _render(self, peer: Peer, take: Path, out: Path) -> None:
        """`scorewright render` of the take (the same audio as its replay), at low priority so
        the live stream keeps its CPU."""
        cmd = [sys.executable, "-m", "scorewright.cli", "--log-level", "warning", "render",
               str(self.map_path), "--events", str(take), "--out", str(out),
               "--seed", str(self.engine.director.seed), "--backend", self.backend_name]
        nice = (lambda: os.nice(10)) if hasattr(os, "nice") else None
        r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=nice)
        if r.returncode == 0:
            peer.reply(encode({"type": "studio.exported", "take": take.name, "wav": out.name,
                               "url": f"/files/{out.name}"}))
        else:
            peer.reply(encode({"type": "error", "code": "export_failed",
                               "message": f"render failed: {r.stderr.strip()[-500:]}"}))

    def close(self) -> None:
        self._stop_recording()
