"""The dispatcher: one thread takes every inbound message, from every transport, in arrival
order, and answers it: decode and check, authorisation, hello/ping/status, game state into the
engine, runtime prompts to the embedder. It never raises: bad input gets an `error` reply."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .audio import FRAME_SAMPLES, SAMPLE_RATE
from .engine import Engine
from .log_throttle import Throttle
from .prompts import PromptEmbedder
from .protocol import Message, ProtocolError, decode, encode, error, ok, printable, status_message
from .stream import PacedStream
from .transport.base import Inbox, Peer

log = logging.getLogger("scorewright.serve")


class Dispatcher:
    def __init__(self, engine: Engine, stream: PacedStream, embedder: PromptEmbedder, inbox: Inbox,
                 status: Callable[[], dict[str, Any]], token: str | None = None) -> None:
        self.engine, self.stream, self.embedder, self.inbox = engine, stream, embedder, inbox
        self.status, self.token = status, token
        self.studio: Callable[[Peer, Message], dict[str, Any]] | None = None   # studio pages' own
        self.messages = self.errors = 0
        self.changes = 0             # messages that may have changed the server's state
        self._throttle = Throttle(log, "rejected messages")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sw-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.inbox.close()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self.inbox.get(timeout=0.25)
            if item is None:
                continue
            try:
                item.peer.reply(encode(self.handle(item.peer, item.payload)))
            except Exception:   # a reply that cannot go out costs that reply, never the thread
                log.exception("could not answer %s", item.peer.describe())

    def handle(self, peer: Peer, payload: bytes) -> dict[str, Any]:
        """One message in, one reply out."""
        self.messages += 1
        msg_id = None
        try:
            msg = decode(payload)
            msg_id = msg.id
            if msg.kind == "hello":
                self.changes += 1
                return self._hello(msg, peer)
            if not peer.authorized:
                raise ProtocolError("unauthorized", "send 'hello' with the server's token first", msg_id)
            if msg.kind == "ping":
                return ok(msg_id, time=time.time())
            if msg.kind == "status":
                return status_message(self.status(), msg_id)
            self.changes += 1
            if msg.kind == "prompt" and msg.fields.get("weight", 1.0) > 0:
                return self._prompt(msg, peer)
            if msg.kind.startswith("studio."):
                if self.studio is None or peer.transport != "web":
                    raise ProtocolError("studio_only", f"'{msg.kind}' comes from a studio page", msg_id)
                return self.studio(peer, msg)
            return self._applied(msg_id, self.engine.handle(msg)["frame"])
        except ProtocolError as e:
            self.errors += 1
            if self._throttle.allow():
                log.warning("rejected from %s: %s (%s)", peer.describe(), printable(e), e.code)
            return error(e.code, str(e), e.msg_id if e.msg_id is not None else msg_id)
        except Exception as e:   # never let one message take the server down
            self.errors += 1
            log.exception("internal error while handling a message")
            return error("internal", f"internal error: {type(e).__name__}: {e}", msg_id)

    def _applied(self, msg_id: Any, frame: int, **extra: Any) -> dict[str, Any]:
        """`ok` with the first frame generated under the change, and the stream position and
        time where it is first heard (after the backend's latency)."""
        late = self.engine.backend.latency_samples
        return ok(msg_id, frame=frame, pos=frame * FRAME_SAMPLES + late,
                  due=self.stream.due_unix(frame) + late / SAMPLE_RATE, **extra)

    def _prompt(self, msg: Message, peer: Peer) -> dict[str, Any]:
        """Embedded off the frame clock: the reply says it is pending; a failure comes later as
        an `error` with the message's id (the status lists prompts still waiting)."""
        def done(result: dict | ProtocolError) -> None:
            if isinstance(result, ProtocolError):
                peer.reply(encode(error(result.code, str(result), msg.id)))
        name = self.embedder.submit(msg, done)
        return ok(msg.id, pending=True, prompt=name)

    def _hello(self, msg: Message, peer: Peer) -> dict[str, Any]:
        if self.token and not peer.authorized:
            given = msg.fields.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise ProtocolError("unauthorized", "wrong or missing token", msg.id)
            peer.authorize()
        peer.want_audio = bool(msg.fields.get("want_audio", False))
        peer.want_markers = bool(msg.fields.get("markers", False))
        peer.client_name = msg.fields.get("client", "")
        log.info("hello from %s", peer.describe())
        return status_message(self.status(), msg.id)
