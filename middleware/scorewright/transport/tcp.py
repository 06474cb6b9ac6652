"""Framed-TCP connections (u32 little-endian length + msgpack), for engines without ZMQ."""

from __future__ import annotations

import socket
import threading

from ..protocol import FrameReader, frame

MAX_BACKLOG_BYTES = 4 << 20      # audio for a client that stops reading is dropped past this


class TcpConnection:
    """One client socket: non-blocking, with an outgoing buffer shared by reply and audio
    writers (thread-safe), and a frame reader for what comes in."""

    def __init__(self, sock: socket.socket, address: tuple) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.address = sock, address
        self.reader = FrameReader()
        self.want_audio = False
        self.want_markers = False
        self.authorized = False
        self.dropped_audio = 0
        self.closed = False
        self._out = bytearray()
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, payload: bytes, droppable: bool = False) -> None:
        with self._lock:
            if self.closed:
                return
            if droppable and len(self._out) > MAX_BACKLOG_BYTES:
                self.dropped_audio += 1
                return
            self._out += frame(payload)
            self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    @property
    def pending(self) -> int:
        return len(self._out)

    def _flush_locked(self) -> None:
        while self._out and not self.closed:
            try:
                n = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.closed = True
                return
            del self._out[:n]

    def recv(self) -> list[bytes]:
        """Read what is there; returns complete frames. Sets `closed` at EOF.
        Raises ProtocolError on a bad frame length."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return []
        return self.reader.feed(data)

    def close(self) -> None:
        with self._lock:
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
