"""`scorewright serve`: the long-running middleware process. The server composes: an Engine
paced in real time, the transports (ZMQ, framed TCP, the shared-memory ring, and whatever else
is given), the dispatcher that answers their messages, the prompt embedder, the map watcher.

Threads: sw-generate and sw-output (the paced stream), one I/O thread per transport,
sw-dispatch (messages, in arrival order), sw-embed (runtime prompts), and the main thread, which
logs one status line per second, reloads an edited map and waits for Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .audio import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE
from .dispatch import Dispatcher
from .engine import Engine, Frame
from .parent import ParentWatch
from .prompts import PromptEmbedder
from .protocol import audio_header, encode, error, marker_message, status_message
from .recording import Recorder
from .stream import PacedStream
from .studio.service import StudioService
from .transport.base import Budgets, Inbox, Outgoing, Transport, release_memory
from .transport.shm import RingTransport
from .transport.tcp import TcpTransport
from .transport.web import WebTransport
from .transport.zmq import ZmqTransport

log = logging.getLogger("scorewright.serve")


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    control_port: int = 7700
    audio_port: int = 7701
    tcp_port: int | None = 7702
    ring: str | None = "default"
    ring_seconds: float = 1.0
    lookahead: int = 3
    token: str | None = None
    record: str | None = None       # file to record every game message into
    watch: bool = True              # hot-reload the map when its files change
    web_port: int | None = 7710     # the studio page (None: off)
    parent_pid: int | None = None   # stop when this process (the game that launched us) ends
    budgets: Budgets = field(default_factory=Budgets)

    def check(self) -> None:
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if not loopback and not self.token:
            raise ValueError(f"binding to {self.host} exposes the middleware to the network; "
                             "pass --token SECRET (clients send it in 'hello')")


class MapWatcher:
    """Notices edits of the map's files by modification time and size (no extra dependency)."""

    def __init__(self, files) -> None:
        self.files = list(files)
        self._seen = self._stamp()

    def _stamp(self) -> list[tuple[int, int] | None]:
        out = []
        for f in self.files:
            try:
                st = os.stat(f)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return out

    def changed(self) -> bool:
        now = self._stamp()
        if now != self._seen:
            self._seen = now
            return True
        return False


def percentile(values, q: float) -> float:
    return float(np.percentile(np.fromiter(values, float), q)) if len(values) else 0.0


def default_transports(config: ServeConfig, studio_files: Path | None = None) -> list[Transport]:
    """ZMQ, framed TCP (unless off), the ring (unless off) and the studio page (unless off, or
    its port is taken: then with a warning), as the config says."""
    made: list[Transport] = []
    try:
        made.append(ZmqTransport(config.host, config.control_port, config.audio_port, config.budgets,
                                 config.token))
        if config.tcp_port is not None:
            made.append(TcpTransport(config.host, config.tcp_port, config.budgets, config.token))
        if config.ring:
            made.append(RingTransport(config.ring, config.ring_seconds))
        if config.web_port is not None:
            try:
                made.append(WebTransport(config.host, config.web_port, config.budgets, config.token,
                                         files=studio_files))
            except OSError as e:          # the game's music matters more than the studio page
                log.warning("studio page off: cannot listen on %s:%d (%s); pick another with "
                            "--web-port", config.host, config.web_port, e)
    except BaseException:
        for t in made:
            t.stop()
        raise
    return made


class Server:
    """Owns the transports around one Engine."""

    def __init__(self, engine: Engine, config: ServeConfig,
                 transports: list[Transport] | None = None) -> None:
        config.check()
        self._parent = ParentWatch(config.parent_pid) if config.parent_pid else None
        self.engine, self.config = engine, config
        self.studio = StudioService(engine, engine.backend.name, self._push_web)
        self.transports = default_transports(config, self.studio.takes) if transports is None else transports
        self.stream = PacedStream(engine, [self._publish], config.lookahead)
        self.inbox = Inbox(config.budgets)
        self.embedder = PromptEmbedder(engine)
        self.dispatcher = Dispatcher(engine, self.stream, self.embedder, self.inbox, self.status,
                                     config.token)
        self.dispatcher.studio = self.studio.handle
        self.map_error: str | None = None
        self._status: tuple[tuple, dict[str, Any]] | None = None
        self._watcher = MapWatcher(engine.director.map.files) if config.watch else None
        self.recorder = Recorder(config.record, engine.director.map.name, engine.director.seed) \
            if config.record else None
        engine.recorder = self.recorder
        self._stop = threading.Event()

    def transport(self, name: str) -> Transport | None:
        return next((t for t in self.transports if t.name == name), None)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        sys.setswitchinterval(0.001)    # hand the GIL to the audio threads within 1 ms
        self.stream.start()
        self.embedder.start()
        self.dispatcher.start()
        for t in self.transports:
            t.start(self.inbox)
        log.info("serving map '%s' with backend '%s'", self.engine.director.map.name,
                 self.engine.backend.name)
        log.info("%s", " | ".join(t.describe() for t in self.transports))

    def stop(self) -> None:
        self._stop.set()
        self.stream.stop()
        self.dispatcher.stop()
        self.embedder.stop()
        self.studio.close()
        for t in self.transports:
            t.stop()
        if self._parent:
            self._parent.close()
        if self.recorder:
            self.recorder.close()
            log.info("recorded the session's messages to %s", self.config.record)
        st = self.stream.stats
        log.info("stopped: %d frames, %d underruns, %d skipped, %d messages, %d errors answered",
                 st.frames, st.underruns, st.skipped, self.dispatcher.messages, self.dispatcher.errors)

    def run_forever(self) -> None:
        """Log a status line every second until `request_stop` (signal handlers call it)."""
        self.start()
        try:
            tick = 0
            while not self._stop.wait(0.25):
                tick += 1
                self.reload_if_changed()
                if tick % 4 == 0:
                    log.info(self.status_line())
                    if self._parent and not self._parent.alive():
                        log.warning("the launching process %d has exited: stopping", self._parent.pid)
                        break
                    release_memory()     # what clients' messages took, back to the OS
        finally:
            self.stop()

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    # -- audio out (output thread) ---------------------------------------------------------
    def _publish(self, k: int, frame: Frame) -> None:
        pos, due = k * FRAME_SAMPLES, self.stream.due_unix(k)
        late = self.engine.backend.latency_samples       # markers: where they are heard
        out = Outgoing(k, frame.pcm, audio_header(k, pos, len(frame.pcm), due),
                       [marker_message(m.kind, m.name, pos + late + m.offset, m.beat, m.bar,
                                       due + (late + m.offset) / SAMPLE_RATE) for m in frame.markers],
                       encode(status_message(self.status())) if k % 25 == 0 else None,
                       frame.inspection)
        for t in self.transports:
            t.publish(out)
        self.engine.inspect = any(t.wants_inspection() for t in self.transports)

    def push(self, message: dict[str, Any]) -> None:
        """An unsolicited message to every authorized client of every transport."""
        payload = encode(message)
        for t in self.transports:
            self._push_to(t, payload)

    def _push_web(self, message: dict[str, Any]) -> None:
        """A message for studio pages only."""
        if (web := self.transport("web")) is not None:
            self._push_to(web, encode(message))

    @staticmethod
    def _push_to(transport: Transport, payload: bytes) -> None:
        """A push that cannot go out is logged; it never ends the calling thread (main or
        dispatcher) and so never the server."""
        try:
            transport.push(payload)
        except Exception:
            log.exception("could not push a message to the %s transport's clients", transport.name)

    # -- map edits (main thread) -----------------------------------------------------------
    def reload_if_changed(self) -> None:
        """Hot reload: a good edit switches at the next bar, a bad one keeps the running map."""
        if self._watcher is None or not self._watcher.changed():
            return
        self._map_file_changed()
        from .session import make_director
        from .statemap.load import MapError, load
        path = self.engine.director.map.path
        try:
            smap = load(path)
            director = make_director(smap, self.engine.backend, self.engine.director.seed)
        except MapError as e:
            self.map_error = str(e)
            log.error("map edit rejected, still playing the last good version:\n%s", e)
            self.push(error("map_error", f"map edit rejected: {e}"))
            return
        except Exception as e:   # e.g. an audio style that cannot be embedded
            self.map_error = f"{type(e).__name__}: {e}"
            log.exception("map edit rejected, still playing the last good version")
            self.push(error("map_error", f"map edit rejected: {self.map_error}"))
            return
        self._watcher = MapWatcher(smap.files)
        self.map_error = None
        self.engine.replace_director(director)
        log.info("map %s changed: the new version starts at the next bar", path)
        self.push(status_message(self.status(), reloaded=True))

    def _map_file_changed(self) -> None:
        """Studio pages show an edit made anywhere (their own save, or another editor); with
        none open, the text is neither read nor checked a second time (the reload loads it)."""
        web = self.transport("web")
        if web is None or web.clients() == 0:
            return
        try:
            text = self.studio.map_text()
        except Exception as e:     # deleted, or replaced by something that is not a map file
            text = None
            log.info("studio: the map file cannot be read: %s", e)
        if text is not None:
            self._push_web({"type": "studio.file", "text": text, "problems": self.studio.problems(text)})

    # -- telemetry -------------------------------------------------------------------------
    def clients(self) -> int:
        return sum(t.clients() for t in self.transports)

    def status(self) -> dict[str, Any]:
        """The server's state, computed again only when something changed (a frame, a message
        other than ping/status, an error answered, a prompt embedded): a client asking in a loop
        costs little."""
        key = (self.engine.steps, self.dispatcher.changes, self.dispatcher.errors, self.embedder.finished,
               self.map_error)
        if self._status is None or self._status[0] != key:
            self._status = (key, self._make_status())
        return self._status[1]

    def _make_status(self) -> dict[str, Any]:
        e, d, st = self.engine, self.engine.director, self.stream.stats
        cond = e.last_cond
        zmq, tcp, ring = (self.transport(n) for n in ("zmq", "tcp", "ring"))
        return {
            "server": "scorewright", "version": __version__, "map": d.map.name,
            "backend": e.backend.name, "sample_rate": SAMPLE_RATE, "channels": CHANNELS,
            "frame_samples": FRAME_SAMPLES, "ring": str(ring.path) if ring else None,
            "audio": zmq.audio_addr if zmq else None, "tcp": tcp.address if tcp else None,
            "frame": st.frames, "underruns": st.underruns, "skipped": st.skipped,
            "lookahead": self.stream.depth, "lookahead_frames": self.stream.lookahead,
            "lookahead_low": st.lookahead_low if st.lookahead_low < 1 << 30 else None,
            "cost_ms_max": round(st.cost_ms_max, 3), "backend_errors": st.backend_errors,
            "backend_faults": e.backend_faults, "rule_errors": d.stats.rule_errors,
            "bad_frames": d.stats.bad_frames,
            "cost_ms_p50": round(percentile(st.cost_ms, 50), 3),
            "cost_ms_p99": round(percentile(st.cost_ms, 99), 3),
            "apply_ms_p95": round(percentile(e.apply_ms, 95), 3),
            "clients": self.clients(), "messages": self.dispatcher.messages,
            "errors": self.dispatcher.errors, "waiting_messages": self.inbox.waiting,
            "paused": bool(e.paused), "map_error": self.map_error,
            "rules": list(d.stats.active_rules),
            "params": {k: round(v, 4) for k, v in d.params.items()}, "states": dict(d.states),
            "events": sorted(d.map.events), "styles": list(d.map.styles),
            "prompts": dict(d.styles.prompts), "prompts_pending": list(self.embedder.pending),
            "weights": cond.weights if cond else {},
            "tempo": round(cond.tempo_bpm, 2) if cond else None,
            "drums": cond.drums if cond else None,
            "notes": [int(n) for n in np.flatnonzero(cond.notes >= 1)] if cond else [],
            "transports": {t.name: t.stats() for t in self.transports},
        }

    def status_line(self) -> str:
        s = self.status()
        low = self.stream.stats.lookahead_low
        return (f"clients {s['clients']} | frame {s['frame']} | cost p50 {s['cost_ms_p50']:.2f} ms "
                f"p99 {s['cost_ms_p99']:.2f} ms | lookahead {s['lookahead']} "
                f"(low {low if low < 1 << 30 else '-'}) | underruns {s['underruns']} | "
                f"msgs {s['messages']} (errors {s['errors']})")
