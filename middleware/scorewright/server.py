"""`scorewright serve`: the long-running middleware process.

Threads: the paced stream (generate + output), one control thread that polls the ZMQ ROUTER,
the TCP listener and every TCP client with a single zmq.Poller, and the main thread that logs
one status line per second and waits for Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from . import __version__
from .audio import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE
from .engine import Engine, Frame, PacedStream
from .protocol import MAX_MESSAGE_BYTES, Message, ProtocolError, decode, encode, error, ok
from .recording import Recorder
from .statemap.director import Marker
from .transport.shm import RingWriter
from .transport.tcp import TcpConnection

log = logging.getLogger("scorewright.serve")

CLIENT_IDLE_S = 30.0       # a ZMQ client not heard from for this long no longer counts


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


class Server:
    """Owns the transports around one Engine."""

    def __init__(self, engine: Engine, config: ServeConfig) -> None:
        config.check()
        self.engine, self.config = engine, config
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.pub = self.ctx.socket(zmq.PUB)
        for s in (self.router, self.pub):
            s.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.pub.setsockopt(zmq.SNDHWM, 200)
        self.control_addr = f"tcp://{config.host}:{config.control_port}"
        self.audio_addr = f"tcp://{config.host}:{config.audio_port}"
        self.router.bind(self.control_addr)
        self.pub.bind(self.audio_addr)
        self.listener: socket.socket | None = None
        if config.tcp_port is not None:
            self.listener = socket.create_server((config.host, config.tcp_port), reuse_port=False)
            self.listener.setblocking(False)
        self.ring = RingWriter(config.ring, int(config.ring_seconds * SAMPLE_RATE)) if config.ring else None
        self.stream = PacedStream(engine, [self._publish], config.lookahead)
        self.tcp_clients: list[TcpConnection] = []
        self.zmq_clients: dict[bytes, float] = {}
        self.zmq_authorized: set[bytes] = set()
        self.messages = 0
        self.errors = 0
        self.map_error: str | None = None
        self._outbox: queue.Queue[bytes] = queue.Queue()     # pushed to every client by control
        self._watcher = MapWatcher(engine.director.map.files) if config.watch else None
        self.recorder = Recorder(config.record, engine.director.map.name, engine.director.seed) \
            if config.record else None
        engine.recorder = self.recorder
        self._stop = threading.Event()
        self._control = threading.Thread(target=self._control_loop, name="sw-control", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        sys.setswitchinterval(0.001)    # hand the GIL to the audio threads within 1 ms
        self.stream.start()
        self._control.start()
        log.info("serving map '%s' with backend '%s'", self.engine.director.map.name,
                 self.engine.backend.name)
        log.info("control %s | audio PUB %s | framed TCP %s | ring %s", self.control_addr,
                 self.audio_addr, f"{self.config.host}:{self.config.tcp_port}" if self.listener else "off",
                 self.ring.path if self.ring else "off")

    def stop(self) -> None:
        self._stop.set()
        self.stream.stop()
        self._control.join(timeout=2)
        for c in self.tcp_clients:
            c.close()
        if self.listener:
            self.listener.close()
        self.router.close(0)
        self.pub.close(0)
        self.ctx.term()
        if self.ring:
            self.ring.close(unlink=True)
        if self.recorder:
            self.recorder.close()
            log.info("recorded the session's messages to %s", self.config.record)
        log.info("stopped: %d frames, %d underruns, %d messages, %d errors answered",
                 self.stream.stats.frames, self.stream.stats.underruns, self.messages, self.errors)

    # -- audio out (output thread) ---------------------------------------------------------
    def _publish(self, k: int, frame: Frame) -> None:
        pos, pcm = k * FRAME_SAMPLES, frame.pcm
        due = self.wall_time(self.stream.due_time(k))
        for m in frame.markers:
            self._publish_marker(m, pos, due)
        if self.ring:
            self.ring.write(pcm)
        header = {"v": 1, "type": "audio", "seq": k, "pos": pos, "sr": SAMPLE_RATE, "ch": CHANNELS,
                  "n": len(pcm), "due": due}
        pcm_bytes = pcm.astype("<f4", copy=False).tobytes()
        self.pub.send_multipart([b"audio", encode(header), pcm_bytes], copy=False)
        listeners = [c for c in self.tcp_clients if c.want_audio and not c.closed]
        if listeners:
            payload = encode({**header, "pcm": pcm_bytes})
            for c in listeners:
                c.send(payload, droppable=True)
        if k % 25 == 0:
            self.pub.send_multipart([b"tele", encode(self.status())])

    def _publish_marker(self, m: Marker, frame_pos: int, frame_due: float) -> None:
        msg = encode({"type": "marker", "kind": m.kind, "name": m.name, "pos": frame_pos + m.offset,
                      "beat": round(m.beat, 6), "bar": m.bar, "due": frame_due + m.offset / SAMPLE_RATE})
        self.pub.send_multipart([b"marker", msg])
        for c in self.tcp_clients:
            if c.want_markers and not c.closed:
                c.send(msg, droppable=True)

    @staticmethod
    def wall_time(perf: float) -> float:
        """perf_counter time -> Unix time (what clients can compare with their clock)."""
        return time.time() + (perf - time.perf_counter())

    # -- control (control thread) ----------------------------------------------------------
    def _control_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        if self.listener:
            poller.register(self.listener, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                events = dict(poller.poll(10))
            except zmq.ZMQError:
                break
            if self.router in events:
                self._router_ready()
            while not self._outbox.empty():
                self._push(self._outbox.get())
            if self.listener and self.listener.fileno() in events:
                self._accept(poller)
            for c in list(self.tcp_clients):
                if c.fileno() in events:
                    self._tcp_ready(c)
                c.flush()
                if c.closed:
                    log.info("TCP client %s:%d disconnected", *c.address[:2])
                    poller.unregister(c.sock)
                    self.tcp_clients.remove(c)
                    c.close()

    def _router_ready(self) -> None:
        while True:
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity, envelope, payload = parts[0], parts[1:-1], parts[-1]
            self.zmq_clients[identity] = time.monotonic()
            reply = self.handle(payload, identity=identity)
            self.router.send_multipart([identity, *envelope, encode(reply)])

    def _push(self, payload: bytes) -> None:
        """Send an unsolicited message (e.g. a map error) to every client (control thread)."""
        for identity in list(self.zmq_clients):
            try:
                self.router.send_multipart([identity, payload], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        for c in self.tcp_clients:
            c.send(payload)

    def reload_if_changed(self) -> None:
        """Hot reload: a good edit switches at the next bar, a bad one keeps the running map."""
        if self._watcher is None or not self._watcher.changed():
            return
        from .session import make_director
        from .statemap.load import MapError, load
        path = self.engine.director.map.path
        try:
            smap = load(path)
            director = make_director(smap, self.engine.backend, self.engine.director.seed)
        except MapError as e:
            self.map_error = str(e)
            log.error("map edit rejected, still playing the last good version:\n%s", e)
            self._outbox.put(encode(error("map_error", f"map edit rejected: {e}")))
            return
        except Exception as e:   # e.g. an audio style that cannot be embedded
            self.map_error = f"{type(e).__name__}: {e}"
            log.exception("map edit rejected, still playing the last good version")
            self._outbox.put(encode(error("map_error", f"map edit rejected: {self.map_error}")))
            return
        self._watcher = MapWatcher(smap.files)
        self.map_error = None
        self.engine.replace_director(director)
        log.info("map %s changed: the new version starts at the next bar", path)
        self._outbox.put(encode({"type": "status", "id": None, **self.status(), "reloaded": True}))

    def _accept(self, poller: zmq.Poller) -> None:
        try:
            sock, addr = self.listener.accept()
        except (BlockingIOError, OSError):
            return
        conn = TcpConnection(sock, addr)
        self.tcp_clients.append(conn)
        poller.register(conn.sock, zmq.POLLIN)
        log.info("TCP client %s:%d connected", *addr[:2])

    def _tcp_ready(self, conn: TcpConnection) -> None:
        try:
            frames = conn.recv()
        except ProtocolError as e:
            self.errors += 1
            log.warning("TCP client %s:%d: %s; closing it", *conn.address[:2], e)
            conn.send(encode(error(e.code, str(e))))
            conn.flush()
            conn.closed = True
            return
        for payload in frames:
            conn.send(encode(self.handle(payload, tcp=conn)))

    def handle(self, payload: bytes, identity: bytes | None = None,
               tcp: TcpConnection | None = None) -> dict[str, Any]:
        """One message in, one reply out. Never raises: bad input gets an `error` reply."""
        self.messages += 1
        msg_id = None
        try:
            msg = decode(payload)
            msg_id = msg.id
            if self.config.token and msg.kind != "hello" and not self._authorized(identity, tcp):
                raise ProtocolError("unauthorized", "send 'hello' with the server's token first", msg_id)
            if msg.kind == "hello":
                return self._hello(msg, identity, tcp)
            if msg.kind == "ping":
                return ok(msg_id, time=time.time())
            if msg.kind == "status":
                return {"type": "status", "id": msg_id, **self.status()}
            applied = self.engine.handle(msg)
            frame = applied["frame"]
            return ok(msg_id, frame=frame, pos=frame * FRAME_SAMPLES,
                      due=self.wall_time(self.stream.due_time(frame)))
        except ProtocolError as e:
            self.errors += 1
            log.warning("rejected message: %s (%s)", e, e.code)
            return error(e.code, str(e), e.msg_id if e.msg_id is not None else msg_id)
        except Exception as e:   # never let one message take the server down
            self.errors += 1
            log.exception("internal error while handling a message")
            return error("internal", f"internal error: {type(e).__name__}: {e}", msg_id)

    def _authorized(self, identity: bytes | None, tcp: TcpConnection | None) -> bool:
        if tcp is not None:
            return tcp.authorized
        return identity is not None and identity in self.zmq_authorized

    def _hello(self, msg: Message, identity: bytes | None, tcp: TcpConnection | None) -> dict:
        if self.config.token:
            given = msg.fields.get("token", "")
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                raise ProtocolError("unauthorized", "wrong or missing token", msg.id)
            if tcp is not None:
                tcp.authorized = True
            if identity is not None:
                self.zmq_authorized.add(identity)
        if tcp is not None:
            tcp.want_audio = bool(msg.fields.get("want_audio", False))
            tcp.want_markers = bool(msg.fields.get("markers", False))
        log.info("hello from %s", msg.fields.get("client", "a client"))
        return {"type": "status", "id": msg.id, **self.status()}

    # -- telemetry -------------------------------------------------------------------------
    def clients(self) -> int:
        now = time.monotonic()
        self.zmq_clients = {k: t for k, t in self.zmq_clients.items() if now - t < CLIENT_IDLE_S}
        return len(self.zmq_clients) + len(self.tcp_clients)

    def status(self) -> dict[str, Any]:
        e, d, st = self.engine, self.engine.director, self.stream.stats
        cond = e.last_cond
        return {
            "server": "scorewright", "version": __version__, "map": d.map.name,
            "backend": e.backend.name, "sample_rate": SAMPLE_RATE, "channels": CHANNELS,
            "frame_samples": FRAME_SAMPLES, "ring": str(self.ring.path) if self.ring else None,
            "audio": self.audio_addr,
            "tcp": f"{self.config.host}:{self.config.tcp_port}" if self.listener else None,
            "frame": st.frames, "underruns": st.underruns, "lookahead": self.stream.depth,
            "lookahead_low": st.lookahead_low if st.lookahead_low < 1 << 30 else None,
            "cost_ms_max": round(st.cost_ms_max, 3), "backend_errors": st.backend_errors,
            "rule_errors": d.stats.rule_errors,
            "cost_ms_p50": round(percentile(st.cost_ms, 50), 3),
            "cost_ms_p99": round(percentile(st.cost_ms, 99), 3),
            "apply_ms_p95": round(percentile(e.apply_ms, 95), 3),
            "clients": self.clients(), "messages": self.messages, "errors": self.errors,
            "paused": bool(e.paused), "map_error": self.map_error,
            "rules": list(d.stats.active_rules),
            "params": {k: round(v, 4) for k, v in d.params.items()}, "states": dict(d.states),
            "events": sorted(d.map.events), "styles": list(d.map.styles),
            "weights": cond.weights if cond else {},
            "tempo": round(cond.tempo_bpm, 2) if cond else None,
            "drums": cond.drums if cond else None,
            "notes": [int(n) for n in np.flatnonzero(cond.notes >= 1)] if cond else [],
        }

    def status_line(self) -> str:
        s = self.status()
        low = self.stream.stats.lookahead_low
        return (f"clients {s['clients']} | frame {s['frame']} | cost p50 {s['cost_ms_p50']:.2f} ms "
                f"p99 {s['cost_ms_p99']:.2f} ms | lookahead {s['lookahead']} "
                f"(low {low if low < 1 << 30 else '-'}) | underruns {s['underruns']} | "
                f"msgs {s['messages']} (errors {s['errors']})")

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
        finally:
            self.stop()

    def request_stop(self, *_: Any) -> None:
        self._stop.set()
