"""The engine: frame clock, lookahead, underrun policy and telemetry.

`Engine` turns messages into director inputs and frames into audio (unpaced: `render`).
`PacedStream` runs an Engine against the wall clock for `serve`: a generator thread keeps
`lookahead` frames ahead of the output, and an output thread publishes one frame every 40 ms
whether or not generation kept up (a late frame is replaced by a fade-out and counted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, silence
from .backends.base import Backend
from .conditioning import Conditioning
from .protocol import Message, ProtocolError
from .statemap.director import Director, InputError, Marker, boundary

log = logging.getLogger(__name__)

FADE_IN = 240                # samples (5 ms) faded in after silence or an underrun
MIN_BUDGET_S = 0.012         # generation starts at least this long before its deadline: covers
                             # a GIL hand-over (switch interval) plus scheduling jitter
STARTUP_GRACE_S = 0.2        # time for the first frame (caches, first SoundFont voices)
STALL_S = 0.25               # publishing this late means the process was stopped (SIGSTOP, swap,
                             # a long GC): the stream skips to the present instead of bursting


@dataclass
class Frame:
    """One generated frame: audio, the conditioning it was made under (None while paused) and
    the markers that fall inside it."""

    pcm: np.ndarray
    cond: Conditioning | None = None
    markers: list[Marker] = field(default_factory=list)


Sink = Callable[[int, Frame], None]   # (stream frame index, frame)


def fade_out(last: np.ndarray) -> np.ndarray:
    """Fill for a missing frame: the last frame mirrored in time (continuous at the joint)
    under a linear fade to silence, so an underrun is a short fade, not a click."""
    ramp = np.linspace(1.0, 0.0, len(last), dtype=np.float32)[:, None]
    return (last[::-1] * ramp).astype(np.float32)


def frame_of(t: float) -> int:
    """The frame a message timed at t seconds applies to."""
    return int(t / FRAME_SECONDS + 1e-9)


def fade_in(pcm: np.ndarray) -> np.ndarray:
    out = pcm.copy()
    out[:FADE_IN] *= np.linspace(0.0, 1.0, FADE_IN, dtype=np.float32)[:, None]
    return out


@dataclass
class ScriptItem:
    """A message due at a time (seconds from the start of the stream), or - in recordings -
    before a given frame (the engine's frame count when it arrived)."""

    t: float
    message: Message
    frame: int | None = None


class Engine:
    """Director + backend behind a lock, so transports may call `handle` from any thread."""

    def __init__(self, backend: Backend, director: Director) -> None:
        self.backend = backend
        self.director = director
        self.lock = threading.Lock()
        self.paused = False
        self.last_cond: Conditioning | None = None
        self._last_pcm = silence()
        self._silent = True                          # next real frame fades in
        self._received: list[float] = []            # receive times not yet applied
        self.apply_ms: deque[float] = deque(maxlen=2000)
        self.recorder: Callable[[int, Message], None] | None = None
        self.steps = 0                               # frames produced, paused ones included
        self.stream_offset = 0                       # stream frame index - steps (serve skips)
        self._next_director: Director | None = None
        self.backend_faults = 0                      # failed frames (the backend was reset)
        backend.reset(director.seed)

    def handle(self, msg: Message) -> dict:
        """Apply a game-state message; returns the reply fields (raises ProtocolError):
        `frame` is the stream index of the first frame generated under it."""
        try:
            with self.lock:
                d, f = self.director, msg.fields
                if self.recorder is not None:
                    self.recorder(self.steps, msg)
                if msg.kind == "set":
                    d.set_param(f["param"], f["value"])
                elif msg.kind == "state":
                    d.set_state(f["group"], f["value"])
                elif msg.kind == "event":
                    d.trigger(f["name"])
                elif msg.kind == "notes":
                    d.notes(f.get("on", []), f.get("off", []))
                elif msg.kind == "prompt":   # unpaced (render): embedded here, in frame order
                    self.director.prompt(self.prompt_name(f), self._embedding_if_needed(f),
                                         float(f.get("weight", 1.0)))
                elif msg.kind == "transport":
                    self._transport(f["cmd"])
                else:
                    raise ProtocolError("unsupported", f"'{msg.kind}' is not a game-state message")
                self._received.append(time.perf_counter())
                return {"frame": self.steps + self.stream_offset}
        except InputError as e:
            raise ProtocolError(e.code, str(e), msg.id) from None

    # -- runtime prompts (serve embeds them off the frame clock: prompts.PromptEmbedder) --
    @staticmethod
    def prompt_name(f: dict) -> str:
        """A prompt's name: the one given, else the start of its text (or 'audio')."""
        return f.get("name") or (f["text"][:40] if "text" in f else "audio")

    def prompt_embedding(self, f: dict) -> np.ndarray:
        """Embed a prompt message's text or audio (slow: not under the lock, not on the clock).
        Audio louder than full scale is brought down to it first."""
        if "text" in f:
            return self.backend.embed_text(f["text"])
        pcm = np.frombuffer(f["audio"], dtype="<f4").reshape(-1, 2)
        peak = float(np.abs(pcm).max())
        return self.backend.embed_audio(pcm / peak if peak > 1.0 else pcm, f.get("sr", SAMPLE_RATE))

    def _embedding_if_needed(self, f: dict) -> np.ndarray | None:
        return None if f.get("weight", 1.0) == 0 else self.prompt_embedding(f)

    def apply_prompt(self, msg: Message, embedding: np.ndarray | None) -> dict:
        """Put an embedded prompt into effect from the next frame generated (recorded then, so a
        replay applies it at the same frame). Raises ProtocolError."""
        try:
            with self.lock:
                if self.recorder is not None:
                    self.recorder(self.steps, msg)
                name = self.director.prompt(self.prompt_name(msg.fields), embedding,
                                            float(msg.fields.get("weight", 1.0)))
                return {"frame": self.steps + self.stream_offset, "prompt": name}
        except InputError as e:
            raise ProtocolError(e.code, str(e), msg.id) from None

    def _transport(self, cmd: str) -> None:
        if cmd == "play" and self.paused == "stop":
            self.director.restart()
            self.backend.reset(self.director.seed)
        self.paused = {"play": False, "pause": "pause", "stop": "stop"}[cmd]

    def replace_director(self, new: Director) -> None:
        """Switch to a new director (hot reload) at the next bar line; it adopts the game state."""
        with self.lock:
            self._next_director = new

    def _maybe_switch(self) -> None:
        new, old = self._next_director, self.director
        if new is None:
            return
        beats_per_frame = old.tempo / 60 * FRAME_SECONDS
        next_bar = boundary(old.beat, "bar", old.map.beats_per_bar)
        if self.paused or next_bar < old.beat + beats_per_frame - 1e-9:
            new.adopt(old)
            self.director, self._next_director = new, None
            log.info("map '%s' reloaded; the new version plays from this bar", new.map.name)

    def step(self, audio: bool = True) -> Frame:
        """Generate the next frame (silence while paused; no audio work with audio=False)."""
        with self.lock:
            self.steps += 1
            self._maybe_switch()
            if self.paused:
                pcm = silence() if self._silent else fade_out(self._last_pcm)
                self._silent = True
                return Frame(pcm)
            cond = self.director.step()
            markers = self.director.markers
            now = time.perf_counter()
            self.apply_ms.extend((now - t) * 1000 for t in self._received)
            self._received.clear()
        self.last_cond = cond
        if not audio:
            return Frame(silence(), cond, markers)
        try:
            pcm = self.backend.generate(cond)
            if not np.isfinite(pcm).all():
                raise FloatingPointError("the backend made audio that is not finite")
        except Exception:
            self._recover()
            raise
        if self._silent:
            pcm, self._silent = fade_in(pcm), False
        self._last_pcm = pcm
        return Frame(pcm, cond, markers)

    def _recover(self) -> None:
        """After a failed frame: restart the backend's stream, so whatever state broke it does
        not break the next frames too."""
        self.backend_faults += 1
        try:
            self.backend.reset(self.director.seed)
        except Exception:
            log.exception("the backend could not be reset after a failed frame")
        self._silent = True

    def render(self, seconds: float, script: Iterable[ScriptItem] = (),
               on_frame: Callable[[int, Frame], None] | None = None,
               on_error: Callable[[ScriptItem, ProtocolError], None] | None = None,
               audio: bool = True) -> np.ndarray:
        """Unpaced rendering: exactly round(seconds * 48000) sample pairs (silence with
        audio=False, which only runs the director: `trace`)."""
        total = int(round(seconds * SAMPLE_RATE))
        n_frames = -(-total // FRAME_SAMPLES)
        items = sorted(script, key=lambda s: (s.frame if s.frame is not None else -1, s.t))
        out = np.empty((n_frames * FRAME_SAMPLES, 2), dtype=np.float32)
        i = 0
        for k in range(n_frames):
            while i < len(items) and (frame_of(items[i].t) if items[i].frame is None
                                      else items[i].frame) <= k:
                try:
                    self.handle(items[i].message)
                except ProtocolError as e:
                    if on_error is None:
                        raise
                    on_error(items[i], e)
                i += 1
            frame = self.step(audio)
            if on_frame is not None:
                on_frame(k, frame)
            out[k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES] = frame.pcm
        return out[:total]


@dataclass
class StreamStats:
    frames: int = 0
    underruns: int = 0
    sink_errors: int = 0
    backend_errors: int = 0
    skipped: int = 0             # frames never published: the stream skipped them after a stall
    bad_audio: int = 0           # frames whose audio was not finite (replaced by a fade)
    lookahead_low: int = 1 << 30
    cost_ms: deque = field(default_factory=lambda: deque(maxlen=250))
    cost_ms_max: float = 0.0


class PacedStream:
    """Runs an Engine in real time: frame k is published at t0 + (k - lookahead + 1) * 40 ms,
    so it is due to play (its stream position) at t0 + k * 40 ms. A frame that is late may still
    go out until `late_deadline`; after that it is replaced by a fade and counted."""

    def __init__(self, engine: Engine, sinks: list[Sink], lookahead: int = 3) -> None:
        if lookahead < 1:
            raise ValueError("lookahead must be at least 1 frame")
        self.engine, self.sinks, self.lookahead = engine, sinks, lookahead
        self.stats = StreamStats()
        self._ready: dict[int, np.ndarray] = {}
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._published = -1           # last frame index handed to the sinks
        self._generated = -1
        self.t0 = 0.0
        self._threads: list[threading.Thread] = []

    def publish_time(self, k: int) -> float:
        return self.t0 + (k - self.lookahead + 1) * FRAME_SECONDS

    def late_deadline(self, k: int) -> float:
        """Latest time frame k may still be published: readers keep one frame plus 10 ms."""
        return max(self.publish_time(k) + 0.005, self.due_time(k) - FRAME_SECONDS - 0.010)

    def due_time(self, k: int) -> float:
        """perf_counter time at which frame k is due to play."""
        return self.t0 + k * FRAME_SECONDS

    def due_unix(self, k: int) -> float:
        """Unix time at which frame k is due to play (what clients compare with their clock)."""
        return time.time() + (self.due_time(k) - time.perf_counter())

    @property
    def depth(self) -> int:
        """Lookahead now: frames generated beyond the one playing."""
        playing = int((time.perf_counter() - self.t0) // FRAME_SECONDS)
        return max(0, self._generated - playing)

    def start(self) -> None:
        self.t0 = time.perf_counter() + (self.lookahead - 1) * FRAME_SECONDS + STARTUP_GRACE_S
        self._threads = [threading.Thread(target=self._generate_loop, name="sw-generate", daemon=True),
                         threading.Thread(target=self._output_loop, name="sw-output", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=2)

    def _budget(self) -> float:
        costs = self.stats.cost_ms
        p99 = float(np.percentile(costs, 99)) if len(costs) >= 10 else 10.0
        return min(FRAME_SECONDS * 0.9, max(MIN_BUDGET_S, (1.5 * p99 + 2.0) / 1000))

    def _generate_loop(self) -> None:
        k = 0
        while not self._stop.is_set():
            with self._cv:
                k = max(k, self._published + 1)     # frames already filled in are skipped
            start_at = self.publish_time(k) - self._budget()
            delay = start_at - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            t = time.perf_counter()
            self.engine.stream_offset = k - self.engine.steps
            try:
                frame = self.engine.step()
            except Exception:   # a backend fault must never stop the stream
                log.exception("frame %d: generation failed; the frame is faded out", k)
                self.stats.backend_errors += 1
                k += 1
                continue
            cost = (time.perf_counter() - t) * 1000
            self.stats.cost_ms.append(cost)
            if k > self.lookahead:          # the first frames warm caches up
                self.stats.cost_ms_max = max(self.stats.cost_ms_max, cost)
            with self._cv:
                if k > self._published:
                    self._ready[k] = frame
                    self._generated = k
                    self._cv.notify_all()
            k += 1

    def _output_loop(self) -> None:
        last = silence()
        faded = True
        k = 0
        while not self._stop.is_set():
            delay = self.publish_time(k) - time.perf_counter()
            if delay < -STALL_S:
                now_k = int((time.perf_counter() - self.t0) / FRAME_SECONDS) + self.lookahead - 1
                log.warning("the stream stalled for %.2f s; skipping %d frames to the present",
                            -delay, now_k - k)
                self.stats.skipped += now_k - k
                k, faded = now_k, True          # the next frame fades in
            if delay > 0 and self._stop.wait(delay):
                break
            with self._cv:
                deadline = self.late_deadline(k)
                while k not in self._ready and not self._stop.is_set():
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cv.wait(remaining)     # a late frame is still fine while audio is buffered
                frame = self._ready.pop(k, None)
                self._published = k
                depth = self._generated - k + self.lookahead - 1
                for old in [i for i in self._ready if i < k]:
                    del self._ready[old]
            if k >= self.lookahead:
                self.stats.lookahead_low = min(self.stats.lookahead_low, max(depth, 0))
            if frame is None:
                self.stats.underruns += 1
                log.warning("underrun at frame %d: generation fell behind; faded out", k)
                frame, faded = Frame(silence() if faded else fade_out(last)), True
            elif faded:
                frame.pcm, faded = fade_in(frame.pcm), False
            for sink in self.sinks:
                try:
                    sink(k, frame)
                except Exception:
                    self.stats.sink_errors += 1
                    log.exception("audio sink failed at frame %d", k)
            last = frame.pcm
            self.stats.frames += 1
            k += 1
