"""ZMQ: a ROUTER socket for game messages (any number of DEALER or REQ clients) and a PUB socket
for audio, markers and telemetry.

With a token, both sockets use ZMQ's PLAIN mechanism through a ZAP handler: a client connects
with username "scorewright" and the token as password, so authorisation belongs to the
connection (it cannot be taken over by reusing a routing id), and a client without it never
gets a message through nor hears the audio. ZMQ has no limit on how many peers connect; each
one is bounded by high-water marks (messages queued in and out) and a hard frame size.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from ..protocol import ProtocolError, encode, error, printable
from .base import Budgets, Inbox, Outgoing, Peer, Transport

log = logging.getLogger(__name__)
USERNAME = "scorewright"
HARD_FRAME_FACTOR = 2        # frames over this many times the message limit close the connection
CLIENT_IDLE_S = 30.0         # a peer not heard from for this long no longer counts as a client
MAX_PEERS = 1024             # peers remembered (for replies and pushes)


def endpoint(host: str, port: int) -> str:
    """tcp://host:port, with IPv6 addresses in brackets."""
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


class ZmqPeer(Peer):
    transport = "zmq"

    def __init__(self, owner: ZmqTransport, identity: bytes, delimiter: bool) -> None:
        self.owner, self.identity, self.delimiter = owner, identity, delimiter
        self.seen = time.monotonic()

    def reply(self, payload: bytes) -> None:
        self.owner.send(self.identity, payload, self.delimiter)

    def describe(self) -> str:
        return f"ZMQ client {printable(self.client_name, 40) if self.client_name else self.identity.hex()}"


class ZmqTransport(Transport):
    name = "zmq"

    def __init__(self, host: str, control_port: int, audio_port: int, budgets: Budgets,
                 token: str | None = None) -> None:
        self.budgets, self.token = budgets, token
        self.ctx = zmq.Context()
        self.auth: ThreadAuthenticator | None = None
        if token:
            self.auth = ThreadAuthenticator(self.ctx, log=logging.getLogger("scorewright.zap"))
            self.auth.start()
            self.auth.configure_plain(domain="*", passwords={USERNAME: token})
        self.router = self.ctx.socket(zmq.ROUTER)
        self.pub = self.ctx.socket(zmq.PUB)
        for s in (self.router, self.pub):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.IPV6, 1)            # IPv6 hosts (::1) as well as IPv4
            if token:
                s.plain_server = True
        self.router.setsockopt(zmq.MAXMSGSIZE, budgets.max_message_bytes * HARD_FRAME_FACTOR)
        self.router.setsockopt(zmq.RCVHWM, budgets.zmq_queue)
        self.router.setsockopt(zmq.SNDHWM, budgets.zmq_queue)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)      # a gone peer's replies are dropped
        self.pub.setsockopt(zmq.SNDHWM, 200)
        self.control_addr, self.audio_addr = endpoint(host, control_port), endpoint(host, audio_port)
        try:
            self.router.bind(self.control_addr)
            self.pub.bind(self.audio_addr)
        except zmq.ZMQError:
            self._close_sockets()
            raise
        self.peers: OrderedDict[bytes, ZmqPeer] = OrderedDict()
        self.malformed = 0
        self._out: queue.SimpleQueue[tuple[bytes, bytes, bool]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._inbox: Inbox | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sw-zmq", daemon=True)

    def describe(self) -> str:
        return f"ZMQ control {self.control_addr}, audio PUB {self.audio_addr}" + (
            " (PLAIN auth)" if self.token else "")

    # -- lifecycle --
    def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._close_sockets()
        self._wake_r.close()
        self._wake_w.close()

    def _close_sockets(self) -> None:
        self.router.close(0)
        self.pub.close(0)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()

    # -- out --
    def publish(self, out: Outgoing) -> None:
        """Output thread: the PUB socket belongs to it."""
        for m in out.markers:
            self.pub.send_multipart([b"marker", m])
        self.pub.send_multipart([b"audio", encode(out.header), out.pcm_bytes], copy=False)
        if out.telemetry is not None:
            self.pub.send_multipart([b"tele", out.telemetry])

    def send(self, identity: bytes, payload: bytes, delimiter: bool = False) -> None:
        """Any thread: the ROUTER belongs to the I/O thread, which sends it when woken."""
        self._out.put((identity, payload, delimiter))
        self._wake()

    def push(self, payload: bytes) -> None:
        for peer in list(self.peers.values()):
            peer.reply(payload)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass                   # already woken (the buffer is full) or closing

    def clients(self) -> int:
        now = time.monotonic()
        return sum(1 for p in list(self.peers.values()) if now - p.seen < CLIENT_IDLE_S)

    def stats(self) -> dict[str, Any]:
        return {"clients": self.clients(), "malformed": self.malformed}

    # -- the I/O thread --
    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                events = dict(poller.poll(100))
            except zmq.ZMQError:
                break
            if self._wake_r.fileno() in events:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            self._send_queued()
            if self.router in events:
                self._receive()

    def _send_queued(self) -> None:
        while True:
            try:
                identity, payload, delimiter = self._out.get_nowait()
            except queue.Empty:
                return
            try:
                self.router.send_multipart([identity, b"", payload] if delimiter else [identity, payload],
                                           zmq.NOBLOCK)
            except zmq.ZMQError:
                pass               # the peer's queue is full or it is gone: the reply is dropped

    def _receive(self) -> None:
        while True:
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity, rest = parts[0], parts[1:]
            delimiter = len(rest) == 2 and rest[0] == b""            # a REQ client's envelope
            peer = self._peer(identity, delimiter)
            if len(rest) != 1 and not delimiter:
                self.malformed += 1
                peer.reply(encode(error("bad_message", "send each message as one ZMQ frame "
                                        f"(got {len(rest)} frames)")))
                continue
            payload = rest[-1]
            if len(payload) > self.budgets.max_message_bytes:
                e = ProtocolError("too_large", f"message is {len(payload)} bytes; the limit is "
                                  f"{self.budgets.max_message_bytes}")
                peer.reply(encode(error(e.code, str(e))))
                continue
            if self._inbox is not None:
                self._inbox.put(peer, payload)

    def _peer(self, identity: bytes, delimiter: bool) -> ZmqPeer:
        peer = self.peers.get(identity)
        if peer is None:
            peer = self.peers[identity] = ZmqPeer(self, identity, delimiter)
            if len(self.peers) > MAX_PEERS:
                self.peers.popitem(last=False)
        peer.seen, peer.delimiter = time.monotonic(), delimiter
        self.peers.move_to_end(identity)
        return peer
