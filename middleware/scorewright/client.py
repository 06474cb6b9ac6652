"""Python client for Scorewright: send game state, read the music.

    from scorewright.client import Client, RingReader, AudioSubscriber

    game = Client.connect()                 # tcp://127.0.0.1:7700, raises if no server
    game.state("area", "cave")
    game.set("danger", 0.8)
    game.event("player_died")
    with RingReader() as ring:              # shared memory, lowest latency
        for block in ring.blocks():         # float32 [1920, 2] at 48 kHz
            ...
"""

from __future__ import annotations

import itertools
import logging
import numbers
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import zmq

from .protocol import decode_reply, encode, error
from .transport.shm import RingError, RingReader

__all__ = ["Client", "AudioSubscriber", "RingReader", "RingError", "ScorewrightError", "wait_for_server"]
log = logging.getLogger("scorewright.client")

DEFAULT_CONTROL = "tcp://127.0.0.1:7700"
DEFAULT_AUDIO = "tcp://127.0.0.1:7701"


class ScorewrightError(RuntimeError):
    """The server answered with an `error` reply."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('message')}")
        self.code = reply.get("code")
        self.reply = reply


class Client:
    """Control connection (ZMQ DEALER). Setters are fire-and-forget by default so a game loop
    never waits; pass wait=True to get the reply (frame, stream position, due time)."""

    def __init__(self, address: str = DEFAULT_CONTROL, timeout: float = 2.0,
                 token: str | None = None) -> None:
        self.address, self.timeout = address, timeout
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 1000)
        self._sock.setsockopt(zmq.IMMEDIATE, 1)   # no server: drop, never queue stale game state
        _prepare_socket(self._sock, token)
        self._sock.connect(address)
        self._ids = itertools.count(1)
        self.errors: deque[dict[str, Any]] = deque(maxlen=100)     # the latest error replies
        self.error_count = 0      # every error reply seen
        self.dropped = 0          # messages dropped in a row while no server took them
        self.status: dict[str, Any] = {}

    @classmethod
    def connect(cls, address: str = DEFAULT_CONTROL, timeout: float = 2.0, name: str = "python",
                want_audio: bool = False, token: str | None = None) -> Client:
        """Connect and say hello; raises ConnectionError if no server answers."""
        client = cls(address, timeout, token)
        fields: dict[str, Any] = {"client": name, "want_audio": want_audio}
        if token:
            fields["token"] = token
        try:
            client.status = client.request("hello", **fields)
        except TimeoutError:
            client.close()
            raise ConnectionError(f"no Scorewright server answered at {address} within {timeout} s; "
                                  "start one with `scorewright serve MAP.yaml`") from None
        return client

    # -- messages ------------------------------------------------------------------------
    def _pack(self, kind: str, fields: dict[str, Any]) -> tuple[int, bytes | None, dict[str, Any] | None]:
        """(id, msgpack bytes, None), or (id, None, a local `error` reply) for a value that cannot
        travel at all (an object msgpack cannot encode)."""
        msg_id = next(self._ids)
        try:
            return msg_id, encode({"type": kind, "id": msg_id,
                                   **{k: wire_value(v) for k, v in fields.items()}}), None
        except (TypeError, ValueError, OverflowError) as e:
            return msg_id, None, error("bad_value", f"'{kind}' cannot be sent: {e}", msg_id)

    def send(self, kind: str, **fields: Any) -> int:
        """Send a message without waiting; returns its id. Never raises for a bad value: the
        server's `error` reply (or a local one, for a value that cannot be encoded) goes to
        `errors` and the log."""
        msg_id, payload, problem = self._pack(kind, fields)
        if problem is not None:
            self._note(problem)
            return msg_id
        try:
            self._sock.send(payload, zmq.NOBLOCK)
        except zmq.Again:     # no server connected (or its queue is full): never block
            if not self.dropped:
                log.warning("scorewright: no server at %s; messages are dropped until it is back",
                            self.address)
            self.dropped += 1
        else:
            self.dropped = 0
        return msg_id

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send and wait for the reply to this message; raises ScorewrightError on `error`."""
        msg_id, payload, problem = self._pack(kind, fields)
        if problem is not None:
            raise ScorewrightError(problem)
        give_up = time.monotonic() + self.timeout
        while True:                     # a connection that is still being made is waited for
            try:
                self._sock.send(payload, zmq.NOBLOCK)
                break
            except zmq.Again:
                if time.monotonic() > give_up:
                    raise TimeoutError(f"no Scorewright server takes messages at {self.address}") from None
                time.sleep(0.005)
        deadline = max(0.0, give_up - time.monotonic()) * 1000
        while self._sock.poll(deadline):
            reply = decode_reply(self._sock.recv())
            if reply.get("id") == msg_id:
                if reply.get("type") == "error":
                    raise ScorewrightError(reply)
                return reply
            self._note(reply)
        raise TimeoutError(f"no reply to '{kind}' from {self.address} within {self.timeout} s")

    def poll_replies(self) -> list[dict[str, Any]]:
        """Collect replies to fire-and-forget messages; errors also go to `errors` and the log."""
        out = []
        while self._sock.poll(0):
            reply = decode_reply(self._sock.recv())
            self._note(reply)
            out.append(reply)
        return out

    def _note(self, reply: dict[str, Any]) -> None:
        if reply.get("type") == "error":
            self.errors.append(reply)
            self.error_count += 1
            log.warning("scorewright: %s (%s)", reply.get("message"), reply.get("code"))

    def _send(self, wait: bool, kind: str, **fields: Any) -> dict[str, Any] | int:
        self.poll_replies()
        return self.request(kind, **fields) if wait else self.send(kind, **fields)

    # -- game state ---------------------------------------------------------------------
    # Setters pass values on as they are: a wrong one ("high" for a number) is answered with an
    # `error` reply (raised with wait=True, else in `errors` / poll_replies()), never raised here.
    def set(self, param: str, value: float, wait: bool = False):
        """Set a continuous game parameter (RTPC), e.g. set("danger", 0.7)."""
        return self._send(wait, "set", param=param, value=value)

    def state(self, group: str, value: str, wait: bool = False):
        """Set a discrete state, e.g. state("area", "cave")."""
        return self._send(wait, "state", group=group, value=value)

    def event(self, name: str, wait: bool = False, **data: Any):
        """Fire a one-shot event (stingers listen to these)."""
        return self._send(wait, "event", name=name, data=data)

    def notes(self, on: Sequence[int] = (), off: Sequence[int] = (), wait: bool = False):
        """MIDI notes on/off (0-127); the music plays them in time and in key."""
        return self._send(wait, "notes", on=list(on), off=list(off))

    def prompt(self, text: str | None = None, weight: float = 1.0, audio: np.ndarray | None = None,
               sr: int = 48000, name: str | None = None, wait: bool = False):
        """Blend in a style from text or from audio (float32 [n, 2]); weight 0 removes it."""
        fields: dict[str, Any] = {"weight": weight}
        if text is not None:
            fields["text"] = text
        if audio is not None:
            if not isinstance(audio, (bytes, np.ndarray)):
                try:                      # a list of [left, right] pairs
                    audio = np.asarray(audio, dtype="<f4")
                except (TypeError, ValueError):
                    pass                  # sent as it is; the server answers what is wrong
            fields["audio"], fields["sr"] = audio, sr
        if name:
            fields["name"] = name
        return self._send(wait, "prompt", **fields)

    def transport(self, cmd: str, wait: bool = False):
        """'play', 'pause' or 'stop'."""
        return self._send(wait, "transport", cmd=cmd)

    def ping(self) -> dict[str, Any]:
        return self.request("ping")

    def get_status(self) -> dict[str, Any]:
        self.status = self.request("status")
        return self.status

    def close(self) -> None:
        self._sock.close(0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _prepare_socket(sock: zmq.Socket, token: str | None) -> None:
    """A server started with --token lets ZMQ clients in with PLAIN credentials: user
    'scorewright', the token as password (the connection, not a routing id, is authorised).
    (Also: IPv6 addresses such as tcp://[::1]:7700 are allowed.)"""
    sock.setsockopt(zmq.IPV6, 1)
    if token:
        sock.plain_username = b"scorewright"
        sock.plain_password = token.encode()


def wire_value(value: Any) -> Any:
    """A game's value as msgpack can carry it: numpy scalars become Python numbers (bools stay
    bools), a numpy array of audio becomes float32 little-endian bytes, lists and maps are
    converted item by item; anything else goes as it is, and the server judges it."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.ndarray):
        return np.asarray(value, dtype="<f4").tobytes() if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [wire_value(v) for v in value]
    if isinstance(value, dict):
        return {k: wire_value(v) for k, v in value.items()}
    return value


def wait_for_server(address: str = DEFAULT_CONTROL, within: float = 60.0, process=None,
                    **connect_args: Any) -> Client:
    """Connect to a server that may still be starting: retry until `within` seconds have passed
    or `process` (a server you started, e.g. a subprocess.Popen) has exited."""
    deadline = time.monotonic() + within
    while True:
        try:
            return Client.connect(address, timeout=1.0, **connect_args)
        except ConnectionError:
            if process is not None and process.poll() is not None:
                raise ConnectionError(f"the server process exited (code {process.returncode}) "
                                      f"before answering at {address}") from None
            if time.monotonic() > deadline:
                raise


class AudioSubscriber:
    """Audio, markers and telemetry from the server's ZMQ PUB socket.

    Markers (beat, bar, transition, stinger) arrive ahead of the audio they mark, each with
    its stream position `pos` (sample pairs) and `due` (Unix time it will be heard); they
    collect in `markers` (or go to `on_marker`).
    """

    def __init__(self, address: str = DEFAULT_AUDIO, telemetry: bool = False, markers: bool = False,
                 on_marker=None, audio: bool = True, token: str | None = None) -> None:
        self._sock = zmq.Context.instance().socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, 500)
        _prepare_socket(self._sock, token)
        self._sock.connect(address)
        self.address = address
        for topic, wanted in ((b"audio", audio), (b"tele", telemetry), (b"marker", markers)):
            if wanted:
                self._sock.subscribe(topic)
        self.markers: deque[dict[str, Any]] = deque(maxlen=1000)
        self.on_marker = on_marker
        self.telemetry: dict[str, Any] = {}
        self.last_header: dict[str, Any] = {}
        self.lost = 0

    def recv(self, timeout: float = 2.0) -> np.ndarray | None:
        """The next audio block as float32 [n, 2], or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            block = self._dispatch(self._sock.recv_multipart())
            if block is not None:
                return block
        return None

    def _dispatch(self, parts: list[bytes]) -> np.ndarray | None:
        """Handle one PUB message; returns the audio block if it was audio."""
        if parts[0] == b"tele":
            self.telemetry = decode_reply(parts[1])
        elif parts[0] == b"marker":
            marker = decode_reply(parts[1])
            self.markers.append(marker)
            if self.on_marker is not None:
                self.on_marker(marker)
        elif parts[0] == b"audio":
            header = decode_reply(parts[1])
            if self.last_header and header["seq"] != self.last_header["seq"] + 1:
                self.lost += header["seq"] - self.last_header["seq"] - 1
            self.last_header = header
            return np.frombuffer(parts[2], dtype="<f4").reshape(-1, header.get("ch", 2))
        return None

    def next_marker(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The next marker (use with audio=False, markers=True), or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.markers and self._sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            self._dispatch(self._sock.recv_multipart())
        return self.markers.popleft() if self.markers else None

    def blocks(self, timeout: float | None = None) -> Iterator[np.ndarray]:
        """Yield audio blocks as they arrive, across server restarts; waits as long as it takes,
        or raises TimeoutError after `timeout` seconds without audio."""
        while True:
            block = self.recv(timeout if timeout is not None else 1.0)
            if block is not None:
                yield block
            elif timeout is not None:
                raise TimeoutError(f"no audio from {self.address} for {timeout:g} s: "
                                   "is `scorewright serve` running?")

    def close(self) -> None:
        self._sock.close(0)

    def __enter__(self) -> AudioSubscriber:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
