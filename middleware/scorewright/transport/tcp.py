"""Framed TCP (u32 little-endian length + msgpack, both ways), for engines without ZMQ.

One I/O thread accepts, reads and flushes every connection with a selector. Every byte a client
can make the server hold is budgeted (transport.base.Budgets): the frame it is sending (checked
from its length header, small until it has said hello with the token), what is queued for it,
and the totals over all clients.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any

from ..protocol import FrameReader, ProtocolError, encode, error, frame, printable
from .base import Budgets, Inbox, Outgoing, Peer, Transport, release_memory

log = logging.getLogger(__name__)
POLL_S = 0.01


class TcpConnection(Peer):
    """One client socket: non-blocking, an outgoing queue shared by reply and audio writers
    (thread-safe), and a frame reader for what comes in."""

    transport = "tcp"

    def __init__(self, sock: socket.socket, address: tuple, owner: TcpTransport) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.address, self.owner = sock, address, owner
        self.authorized = owner.token is None
        self.reader = FrameReader(owner.budgets.max_message_bytes if self.authorized
                                  else owner.budgets.unauthorized_message_bytes)
        self.connected_at = time.monotonic()
        self.partial_since: float | None = None
        self.dropped_audio = 0
        self.closed = False
        self.close_reason = ""
        self._out: deque[memoryview] = deque()
        self._backlog = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"TCP client {self.address[0]}:{self.address[1]}" + (
            f" ({printable(self.client_name, 40)})" if self.client_name else "")

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def backlog(self) -> int:
        """Bytes queued for this client."""
        return self._backlog

    def authorize(self) -> None:
        self.authorized = True
        self.reader.limit = self.owner.budgets.max_message_bytes

    def reply(self, payload: bytes) -> None:
        self.send(payload)

    def send(self, payload: bytes, droppable: bool = False) -> None:
        """Queue a message. Audio (droppable) is dropped past half the client's backlog budget
        or past the transport's total; a reply past the whole budget closes the connection
        (the client stopped reading)."""
        budgets = self.owner.budgets
        data = frame(payload)
        with self._lock:
            if self.closed:
                return
            if droppable and (self._backlog + len(data) > budgets.client_backlog_bytes // 2
                              or self.owner.backlog + len(data) > budgets.total_backlog_bytes):
                self.dropped_audio += 1
                return
            if self._backlog + len(data) > budgets.client_backlog_bytes:
                self._close_locked("it stopped reading (its queue passed "
                                   f"{budgets.client_backlog_bytes >> 20} MiB)")
                return
            self._out.append(memoryview(data))
            self._backlog += len(data)
            self.owner.count_backlog(len(data))
            self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        while self._out and not self.closed:
            chunk = self._out[0]
            try:
                n = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close_locked("the connection broke")
                return
            self._backlog -= n
            self.owner.count_backlog(-n)
            if n == len(chunk):
                self._out.popleft()
            else:
                self._out[0] = chunk[n:]
                return

    def recv(self) -> list[bytes]:
        """Read what is there; returns complete frames. Sets `closed` at EOF. Raises
        ProtocolError on a frame over the client's size limit."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data = b""
        if not data:
            self.close("it disconnected")
            return []
        frames = self.reader.feed(data)
        self.partial_since = None if not self.reader.pending else (self.partial_since or time.monotonic())
        return frames

    def close(self, reason: str = "") -> None:
        with self._lock:
            self._close_locked(reason)

    def _close_locked(self, reason: str) -> None:
        if not self.closed:
            self.closed, self.close_reason = True, reason
            self.owner.count_backlog(-self._backlog)
            self._out.clear()
            self._backlog = 0

    def shutdown(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class TcpTransport(Transport):
    """Listens on host:port; one connection per client."""

    name = "tcp"

    def __init__(self, host: str, port: int, budgets: Budgets, token: str | None = None) -> None:
        self.budgets, self.token = budgets, token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, port), family=family, reuse_port=False)
        self.listener.setblocking(False)
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.conns: list[TcpConnection] = []
        self.refused = self.disconnected = 0
        self._backlog = 0
        self._backlog_lock = threading.Lock()
        self._inbox: Inbox | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sw-tcp", daemon=True)

    def describe(self) -> str:
        return f"framed TCP {self.address}"

    @property
    def backlog(self) -> int:
        return self._backlog

    def count_backlog(self, delta: int) -> None:
        with self._backlog_lock:
            self._backlog += delta

    # -- lifecycle --
    def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for c in list(self.conns):
            c.close("the server stopped")
            c.shutdown()
        self.listener.close()

    # -- out (output and dispatcher threads) --
    def publish(self, out: Outgoing) -> None:
        for c in list(self.conns):
            if c.closed or not c.authorized:
                continue
            if c.want_audio:
                c.send(out.framed_audio, droppable=True)
            if c.want_markers:
                for m in out.markers:
                    c.send(m, droppable=True)

    def push(self, payload: bytes) -> None:
        for c in list(self.conns):
            if c.authorized and not c.closed:
                c.send(payload)

    def clients(self) -> int:
        return sum(1 for c in self.conns if not c.closed)

    def stats(self) -> dict[str, Any]:
        return {"clients": self.clients(), "backlog_bytes": self._backlog, "refused": self.refused,
                "disconnected": self.disconnected, "limited": sum(c.limited for c in self.conns),
                "dropped_audio": sum(c.dropped_audio for c in self.conns)}

    # -- the I/O thread --
    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(POLL_S):
                if key.fileobj is self.listener:
                    self._accept(sel)
                else:
                    self._read(key.data)
            now = time.monotonic()
            if self.conns and sum(c.reader.pending for c in self.conns) > self.budgets.total_inbound_bytes:
                max(self.conns, key=lambda c: c.reader.pending).close(
                    "the server holds too much unfinished input; this client held the most")
            freed = 0
            for c in list(self.conns):
                self._police(c, now)
                c.flush()
                if c.closed:
                    freed += c.reader.pending
                    sel.unregister(c.sock)
                    self.conns.remove(c)
                    c.shutdown()
                    self.disconnected += 1
                    log.info("%s closed: %s", c.describe(), c.close_reason)
            if freed > 1 << 20:
                release_memory()
        sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            sock, addr = self.listener.accept()
        except (BlockingIOError, OSError):
            return
        conn = TcpConnection(sock, addr, self)
        if len(self.conns) >= self.budgets.max_clients:
            self.refused += 1
            conn.send(encode(error("too_many_clients", f"the server takes at most "
                                   f"{self.budgets.max_clients} TCP clients")))
            conn.flush()
            conn.close("too many clients")
            conn.shutdown()
            return
        self.conns.append(conn)
        sel.register(sock, selectors.EVENT_READ, conn)
        log.info("%s connected", conn.describe())

    def _read(self, conn: TcpConnection) -> None:
        try:
            frames = conn.recv()
        except ProtocolError as e:
            conn.send(encode(error(e.code, f"{e}; closing the connection")))
            conn.flush()
            conn.close(str(e))
            return
        for payload in frames:
            if self._inbox is not None:
                self._inbox.put(conn, payload)

    def _police(self, c: TcpConnection, now: float) -> None:
        """Close a connection that holds the server's memory or time without using it."""
        b = self.budgets
        if not c.authorized and now - c.connected_at > b.hello_timeout_s:
            c.close(f"no hello with the token within {b.hello_timeout_s:g} s")
        elif c.partial_since is not None and now - c.partial_since > b.partial_timeout_s:
            c.close(f"a frame stayed unfinished for {b.partial_timeout_s:g} s")
