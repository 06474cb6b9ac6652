"""What every transport is: start/stop, inbound messages with the peer they came from onto one
bounded inbox, `publish` of each frame (audio, markers, telemetry), pushes to its peers, and
budgets that bound every byte a client can make the server hold.

Threads: each transport runs its own I/O; `publish` is called from the stream's output thread;
`Peer.reply` and `push` from the dispatcher (or any) thread. The engine never sees a socket.
"""

from __future__ import annotations

import abc
import ctypes
import ctypes.util
import functools
import queue
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..protocol import MAX_MESSAGE_BYTES, encode, error, printable


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_memory() -> None:
    """Hand the heap a client freed back to the OS (glibc keeps freed memory otherwise, so a
    burst of hostile buffers would stay in the server's footprint); a no-op elsewhere."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@dataclass(frozen=True)
class Budgets:
    """Limits a transport holds each client and all its clients to. Exceeding one gives the
    client an error reply, drops its audio, or closes its connection; never other clients'."""

    max_clients: int = 32                  # connections (framed TCP, WebSocket) at once
    max_message_bytes: int = MAX_MESSAGE_BYTES
    unauthorized_message_bytes: int = 4096  # what a client may send before its hello with the token
    hello_timeout_s: float = 10.0          # ...and how long it may take to send that hello
    partial_timeout_s: float = 30.0        # a frame begun but not finished for this long: closed
    client_backlog_bytes: int = 2 << 20    # queued for one client: audio dropped past half, closed past all
    total_backlog_bytes: int = 32 << 20    # queued for all clients of a transport: audio dropped past
    total_inbound_bytes: int = 16 << 20    # unfinished frames held for all clients of a transport
    pending_messages: int = 256            # messages waiting for the dispatcher, all transports
    messages_per_second: float = 500.0     # one client's sustained rate (a game sends tens)...
    message_burst: int = 250               # ...and burst; beyond, its messages are refused
    zmq_queue: int = 64                    # ZMQ messages queued per peer, in and out (high-water marks)


class TokenBucket:
    """A rate limit: `rate` a second sustained, `burst` at once (full at the start)."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, float(burst), now

    def take(self, now: float, n: float = 1.0) -> bool:
        """Spend `n` tokens at time `now` (monotonic seconds); False, spending none, when short."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


class Peer(abc.ABC):
    """One client of one transport, as the dispatcher sees it."""

    transport: str = ""
    authorized: bool = True      # False until a hello with the token, when the server has one
    want_audio: bool = False     # hello's want_audio / markers (transports that carry audio)
    want_markers: bool = False
    client_name: str = ""
    _bucket: TokenBucket | None = None   # the rate limit's (made full on the first message)
    _refused_notice: float = 0.0
    limited: int = 0             # messages refused for going too fast

    def allow(self, now: float, rate: float, burst: int) -> bool:
        """`rate` messages a second sustained, `burst` at once (a TokenBucket per peer)."""
        if self._bucket is None:
            self._bucket = TokenBucket(rate, burst, now)
        if self._bucket.take(now):
            return True
        self.limited += 1
        return False

    @abc.abstractmethod
    def reply(self, payload: bytes) -> None:
        """Send a message to this peer (thread-safe; never blocks)."""

    def authorize(self) -> None:
        """It said hello with the right token."""
        self.authorized = True

    def describe(self) -> str:
        return f"{self.transport} client {printable(self.client_name, 40)}".strip()


@dataclass
class Inbound:
    peer: Peer
    payload: bytes


class Inbox:
    """The one queue every transport puts inbound messages on, in arrival order, bounded."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self._q: queue.Queue[Inbound | None] = queue.Queue(maxsize=budgets.pending_messages)

    def put(self, peer: Peer, payload: bytes) -> bool:
        """Queue a message; False (and a `busy` error to the peer, at most once a second when it
        goes too fast) when the client is over its rate or the inbox is full."""
        now = time.monotonic()
        if not peer.allow(now, self.budgets.messages_per_second, self.budgets.message_burst):
            if now - peer._refused_notice >= 1.0:
                peer._refused_notice = now
                peer.reply(encode(error("busy", f"more than {self.budgets.messages_per_second:g} messages "
                                        "a second; messages are refused until you send fewer")))
            return False
        try:
            self._q.put_nowait(Inbound(peer, payload))
            return True
        except queue.Full:
            peer.reply(encode(error("busy", "the server has too many messages waiting; send fewer")))
            return False

    def get(self, timeout: float) -> Inbound | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Wake a waiting `get` (it returns None)."""
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass

    @property
    def waiting(self) -> int:
        return self._q.qsize()


@dataclass
class Outgoing:
    """One published frame, encoded once for every transport that carries it."""

    seq: int                       # stream frame index
    pcm: np.ndarray                # float32 [n, 2]
    header: dict[str, Any]         # protocol.audio_header
    markers: list[bytes] = field(default_factory=list)    # encoded protocol.marker_message
    telemetry: bytes | None = None                        # encoded status, once a second
    inspection: dict[str, Any] | None = None              # the director after this frame (studio)

    @cached_property
    def pcm_bytes(self) -> bytes:
        return self.pcm.astype("<f4", copy=False).tobytes()

    @cached_property
    def framed_audio(self) -> bytes:
        """The audio as one msgpack map with the PCM inside (framed TCP)."""
        return encode({**self.header, "pcm": self.pcm_bytes})


class Transport(abc.ABC):
    """A way for games (or the studio) to reach the server."""

    name: str = ""

    @abc.abstractmethod
    def start(self, inbox: Inbox) -> None:
        """Begin serving; inbound messages go to `inbox`."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving and release every socket and file."""

    @abc.abstractmethod
    def publish(self, out: Outgoing) -> None:
        """Send one frame to the peers that want it (output thread; never blocks)."""

    @abc.abstractmethod
    def push(self, payload: bytes) -> None:
        """An unsolicited message (a map error, a reload) to every authorized peer."""

    def clients(self) -> int:
        return 0

    def wants_inspection(self) -> bool:
        """Do its peers want the director's snapshot with each frame (the studio)?"""
        return False

    def stats(self) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        return self.name
