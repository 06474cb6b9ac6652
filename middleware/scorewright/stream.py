"""The paced stream: an Engine run against the wall clock for `serve`. A generator thread keeps
`lookahead` frames ahead of the output, and an output thread publishes one frame every 40 ms
whether or not generation kept up (a late frame is replaced by a fade-out and counted); after a
stall it skips to the present.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .audio import FRAME_SECONDS, silence
from .engine import Engine, Frame, fade_in, fade_out
from .log_throttle import Throttle

log = logging.getLogger(__name__)

MIN_BUDGET_S = 0.012         # generation starts at least this long before its deadline: covers
                             # a GIL hand-over (switch interval) plus scheduling jitter
STARTUP_GRACE_S = 0.2        # time for the first frame (caches, first SoundFont voices)
STALL_S = 0.25               # publishing this late means the process was stopped (SIGSTOP, swap,
                             # a long GC): the stream skips to the present instead of bursting
SLOW_CHECK_FRAMES = 50       # after this many timed frames, say once if the backend cannot keep up

Sink = Callable[[int, Frame], None]   # (stream frame index, frame)


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
        self._underrun_log = Throttle(log, "underruns", per_second=1)
        self._slow_checked = False
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
                if not self._slow_checked and k >= self.lookahead + SLOW_CHECK_FRAMES:
                    self._slow_checked = True
                    self._say_if_too_slow()
            with self._cv:
                if k > self._published:
                    self._ready[k] = frame
                    self._generated = k
                    self._cv.notify_all()
            k += 1

    def _say_if_too_slow(self) -> None:
        """One warning when the backend's median frame cost is over the 40 ms a frame lasts: no
        lookahead hides that, so the user hears gaps and should know why, and what to do."""
        recent = list(self.stats.cost_ms)[-SLOW_CHECK_FRAMES:]
        p50 = float(np.median(recent))
        if p50 <= FRAME_SECONDS * 1000:
            return
        name = getattr(self.engine.backend, "name", "this")
        log.warning(
            "the %s backend takes %.0f ms to make a frame here (median of %d), longer than the %.0f ms "
            "a frame plays: this machine cannot play it in real time, so the audio will have gaps. "
            "Render offline (scorewright render), play the synth backend, or use a faster machine "
            "(for mrt2, docs/mrt2.md: 'What hardware plays it in real time')",
            name, p50, len(recent), FRAME_SECONDS * 1000)

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
                if self._underrun_log.allow():
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
