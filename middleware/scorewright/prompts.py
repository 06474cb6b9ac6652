"""Runtime prompts off the frame clock: text and audio prompts are embedded on a thread of their
own and take effect at the first frame generated after their embedding is ready. A bounded
queue (a client flooding prompts gets `busy`), and a small cache of text embeddings (games
repeat their prompts)."""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .engine import Engine
from .protocol import Message, ProtocolError, printable
from .statemap.styles import prompt_key

log = logging.getLogger(__name__)


@dataclass
class PromptJob:
    msg: Message
    done: Callable[[dict | ProtocolError], None]     # the applied result, or why it failed


class PromptEmbedder:
    def __init__(self, engine: Engine, max_pending: int = 4, cache_size: int = 64) -> None:
        self.engine = engine
        self.pending: list[str] = []          # names waiting for their embedding (for status)
        self.failed = 0
        self.finished = 0             # prompts done (applied or failed)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._queue: queue.Queue[PromptJob | None] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sw-embed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=5)

    def submit(self, msg: Message, done: Callable[[dict | ProtocolError], None]) -> str:
        """Queue a prompt with a weight > 0; returns its style name. Raises ProtocolError `busy`
        when too many prompts wait."""
        name = prompt_key(self.engine.prompt_name(msg.fields))
        try:
            self._queue.put_nowait(PromptJob(msg, done))
        except queue.Full:
            raise ProtocolError("busy", f"{self._queue.maxsize} prompts are waiting for their "
                                "embedding; send this one again later", msg.id) from None
        with self._lock:
            self.pending.append(name)
        return name

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            name = prompt_key(self.engine.prompt_name(job.msg.fields))
            try:
                result: dict | ProtocolError = self.engine.apply_prompt(job.msg, self._embed(job.msg))
            except ProtocolError as e:
                result = e
            except Exception as e:   # a backend failing on one prompt must not end the worker
                log.exception("embedding prompt '%s' failed", printable(name))
                result = ProtocolError("prompt_failed", f"the prompt could not be embedded: "
                                       f"{type(e).__name__}: {e}", job.msg.id)
            if isinstance(result, ProtocolError):
                self.failed += 1
            with self._lock:
                self.pending.remove(name)
                self.finished += 1
            job.done(result)

    def _embed(self, msg: Message) -> np.ndarray:
        text = msg.fields.get("text")
        if text is None:
            return self.engine.prompt_embedding(msg.fields)
        if text in self._cache:
            self._cache.move_to_end(text)
            return self._cache[text]
        emb = self._cache[text] = self.engine.prompt_embedding(msg.fields)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return emb
