"""The engine: game messages into the director, frames out of the backend.

`Engine` is driven unpaced by `render` and in real time by `stream.PacedStream` (`serve`). It
records messages at the frame they apply to, replays takes, switches maps at the bar, and
keeps a failing backend from poisoning later frames.
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
from .statemap.inspect import inspect

log = logging.getLogger(__name__)

FADE_IN = 240                # samples (5 ms) faded in after silence or an underrun
GAME_STATE_KINDS = ("set", "state", "event", "notes", "prompt", "transport", "override", "release")
REPLAY_WARNINGS = 20         # refused messages of one replayed take logged; the rest counted


@dataclass
class Frame:
    """One generated frame: audio, the conditioning it was made under (None while paused) and
    the markers that fall inside it."""

    pcm: np.ndarray
    cond: Conditioning | None = None
    markers: list[Marker] = field(default_factory=list)
    inspection: dict | None = None     # the director after this frame (studio), when asked for


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
    embedding: np.ndarray | None = None    # a prompt's, computed ahead (replays in real time)


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
        self.inspect = False                         # attach director snapshots to frames (studio)
        self._reset_backend = False                  # the generate thread resets it before the next frame
        self._script: deque[ScriptItem] = deque()    # a replayed take: messages due at their frames
        self._script_origin = 0
        self._replay_refused = 0
        backend.reset(director.seed)

    def handle(self, msg: Message) -> dict:
        """Apply a game-state message; returns the reply fields (raises ProtocolError):
        `frame` is the stream index of the first frame generated under it."""
        try:
            with self.lock:
                if self.recorder is not None:
                    self.recorder(self.steps, msg)
                self._apply(msg)
                self._received.append(time.perf_counter())
                return {"frame": self.steps + self.stream_offset}
        except InputError as e:
            raise ProtocolError(e.code, str(e), msg.id) from None

    def _apply(self, msg: Message, embedding: np.ndarray | None = None) -> None:
        """One game-state message into the director (the lock is held); a prompt's embedding is
        computed here unless given."""
        d, f = self.director, msg.fields
        if msg.kind == "set":
            d.set_param(f["param"], f["value"])
        elif msg.kind == "state":
            d.set_state(f["group"], f["value"])
        elif msg.kind == "event":
            d.trigger(f["name"])
        elif msg.kind == "notes":
            d.notes(f.get("on", []), f.get("off", []))
        elif msg.kind == "prompt":   # unpaced (render): embedded here, in frame order
            if embedding is None:
                embedding = self._embedding_if_needed(f)
            d.prompt(self.prompt_name(f), embedding, float(f.get("weight", 1.0)))
        elif msg.kind == "transport":
            self._transport(f["cmd"])
        elif msg.kind in ("override", "release"):
            kind, name = ("param", f["param"]) if "param" in f else ("state", f["group"])
            d.override(kind, name, f["value"]) if msg.kind == "override" else d.release(kind, name)
        else:
            raise ProtocolError("unsupported", f"'{msg.kind}' is not a game-state message")

    def restart(self, script: Iterable[ScriptItem] = ()) -> tuple[int, int]:
        """Back to the top of the music from the next frame (director and backend), playing
        `script` (a take: messages at frames counted from here); returns the engine's step
        count there (frame 0 of a take recorded from now) and that frame's stream index. The
        script's prompts are embedded first, so the frame clock never waits for them."""
        script = list(script)
        for item in script:
            if item.message.kind == "prompt":
                item.embedding = self._embedding_if_needed(item.message.fields)
        with self.lock:
            self.director.restart()
            self.paused, self._reset_backend = False, True
            self._script = deque(sorted(script, key=lambda s: s.frame or 0))
            self._script_origin, self._replay_refused = self.steps, 0
            return self.steps, self.steps + self.stream_offset

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
            self._reset_backend = True
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
            while self._script and (self._script[0].frame or 0) <= self.steps - self._script_origin:
                item = self._script.popleft()
                try:
                    self._apply(item.message, item.embedding)
                except (InputError, ProtocolError) as e:   # a take recorded against another map
                    self._replay_refused += 1
                    if self._replay_refused <= REPLAY_WARNINGS:
                        log.warning("replay: %s%s", e, "; further refusals in this take are not logged"
                                    if self._replay_refused == REPLAY_WARNINGS else "")
            self.steps += 1
            self._maybe_switch()
            if self.paused:
                pcm = silence() if self._silent else fade_out(self._last_pcm)
                self._silent = True
                return Frame(pcm)
            cond = self.director.step()
            markers = self.director.markers
            inspection = inspect(self.director, cond) if self.inspect else None
            now = time.perf_counter()
            self.apply_ms.extend((now - t) * 1000 for t in self._received)
            self._received.clear()
            reset, self._reset_backend = self._reset_backend, False
        self.last_cond = cond
        if reset:
            self.backend.reset(self.director.seed)
            self._silent = True
        if not audio:
            return Frame(silence(), cond, markers, inspection)
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
        return Frame(pcm, cond, markers, inspection)

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
