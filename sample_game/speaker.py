"""Callback-driven playback of the Scorewright stream through an SDL audio device.

SDL calls `Speaker._fill` from its own audio thread whenever the device needs the next 10 ms,
and the callback reads straight from the stream, so the game adds one 10 ms device buffer of
latency and a stutter in the game loop never reaches the speakers. (pygame's mixer channels
cannot do this: they play whole Sounds, which makes the game buffer 40 ms blocks itself.)
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import queue
import sys
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pygame
import pygame._sdl2.audio as sdl_audio
import pygame._sdl2.sdl2 as sdl

from scorewright.audio import FRAME_SAMPLES, SAMPLE_RATE, to_int16

CHUNK = 480                  # device buffer: 10 ms
MAX_DRIFT = 0.05             # playback rate correction limit (+-5 %)
FILL_SMOOTHING = 0.02        # per-callback EMA weight: the fill is judged over ~0.5 s


class Stream(Protocol):
    """Where the speaker's audio comes from (the ring or the PUB socket)."""

    def available(self) -> int: ...
    def read(self, n: int) -> np.ndarray: ...
    def skip(self, keep: int) -> None:
        """Drop all but the newest `keep` samples (start playing from the present)."""
        ...

    @property
    def position(self) -> int:
        """Stream position (sample pairs since the server started) of the next sample read."""
        ...


@dataclass(frozen=True)
class Played:
    """One device chunk: stream samples [pos, pos + taken) handed to the sound card at `t`
    (time.monotonic()), stretched or squeezed to `n` device samples."""

    pos: int
    taken: int
    n: int
    t: float

    def heard_at(self, pos: int) -> float:
        """When stream sample `pos` (inside this chunk) leaves the speakers: after the chunk's
        earlier samples and the device buffer (one chunk) ahead of it."""
        return self.t + ((pos - self.pos) * self.n / self.taken + CHUNK) / SAMPLE_RATE


class Speaker:
    """Plays `stream` and holds about `target` samples of it waiting, so the stream's own
    lookahead, not the game, absorbs the server's publishing jitter.

    The sound card's clock never runs at exactly the server's rate (SDL's dummy and disk drivers
    run a few % off), so each chunk is resampled from slightly more or fewer stream samples to
    hold the smoothed fill at `target`; a real device drifts by ~0.01 %, which this corrects
    inaudibly. Playback starts, and restarts after running dry, only at the target fill.
    """

    def __init__(self, stream: Stream, target: int, record: str | None = None) -> None:
        self.stream, self.target = stream, target
        self.samples_played = 0
        self.gaps = 0
        self.max_gap_ms = 0.0
        self.gap_log: list[tuple[float, float]] = []     # (seconds heard, gap in ms)
        self.fill = float(target)
        self.max_callback_gap_ms = 0.0       # > 2 chunks apart would be a glitch on a real card
        self.played: deque[Played] = deque(maxlen=400)   # the last 4 s of chunks, for latency
        self._last_callback: float | None = None
        self._primed = False
        self._dry_since: float | None = None
        self._recorder = _Recorder(record) if record else None
        try:
            self._device = self._open_device()
        except sdl.error as e:
            # no sound card (a server, a container): keep the game and its music clock running
            # on SDL's dummy driver, so --record and the HUD still work
            print(f"sample-game: no audio output ({e}); playing silently. Set SDL_AUDIODRIVER "
                  "to pick a driver (pulseaudio, alsa, pipewire, directsound, coreaudio).", file=sys.stderr)
            library = _sdl_library()
            if library is not None:
                library.SDL_QuitSubSystem(ctypes.c_uint32(0x10))      # SDL_INIT_AUDIO
            os.environ["SDL_AUDIODRIVER"] = "dummy"
            self._device = self._open_device()

    def _open_device(self) -> sdl_audio.AudioDevice:
        sdl.init_subsystem(sdl.INIT_AUDIO)      # reference-counted by SDL: safe to repeat
        names = list(sdl_audio.get_audio_device_names(False))
        default = _default_output_name()
        name = default if default in names else (names[0] if names else "")
        return sdl_audio.AudioDevice(
            devicename=name, iscapture=False, frequency=SAMPLE_RATE,
            audioformat=sdl_audio.AUDIO_F32, numchannels=2, chunksize=CHUNK, allowed_changes=0,
            callback=self._fill)

    @property
    def frames_played(self) -> int:
        """Stream frames (40 ms) the player has heard."""
        return self.samples_played // FRAME_SAMPLES

    def start(self) -> None:
        self._device.pause(0)

    def close(self) -> None:
        """Stop the device without deadlocking: SDL holds the device lock while our callback
        waits for the GIL, so the pause/close must be called with the GIL released (through
        ctypes), not through pygame's wrappers, which keep it."""
        sdl2 = _sdl_library()
        if sdl2 is not None:
            sdl2.SDL_PauseAudioDevice(ctypes.c_uint32(self._device.deviceid), 1)
        else:
            self._device.pause(1)
        self._device.close()        # the callback can no longer run: safe through pygame
        if self._recorder is not None:
            self._recorder.close()

    def _fill(self, _device, out: memoryview) -> None:
        """SDL's audio thread asks for the next chunk: never raise, never block."""
        n = len(out) // 8
        now = time.monotonic()
        if self._last_callback is not None and self.samples_played:
            self.max_callback_gap_ms = max(self.max_callback_gap_ms, (now - self._last_callback) * 1000)
        self._last_callback = now
        try:
            chunk = self._next(n)
        except Exception:          # a broken stream is silence, not a dead audio thread
            chunk = None
        if chunk is None:
            out[:] = bytes(len(out))
            return
        out[:] = chunk.astype(np.float32).tobytes()
        self.samples_played += n
        if self._recorder is not None:
            self._recorder.put(chunk)

    def _next(self, n: int) -> np.ndarray | None:
        available = self.stream.available()
        self.fill += FILL_SMOOTHING * (available - self.fill)
        if not self._primed:
            if available < self.target:
                return None
            if available > self.target + n:      # audio piled up while nothing played: the
                self.stream.skip(self.target)     # music starts at the present, not behind it
                available = self.stream.available()
            self._primed, self.fill = True, float(available)
            if self._dry_since is not None:
                gap_ms = (time.monotonic() - self._dry_since) * 1000
                self.gaps += 1
                self.max_gap_ms = max(self.max_gap_ms, gap_ms)
                self.gap_log.append((round(self.samples_played / SAMPLE_RATE, 2), round(gap_ms, 1)))
                self._dry_since = None
        error = (self.fill - self.target) / self.target
        ratio = min(max(1.0 + 0.5 * error, 1 - MAX_DRIFT), 1 + MAX_DRIFT)
        take = int(round(n * ratio))
        if available < take:                  # ran dry: silence until the target fill again
            self._primed, self._dry_since = False, time.monotonic()
            return None
        pos = self.stream.position
        src = self.stream.read(take)
        self.played.append(Played(pos, take, n, time.monotonic()))
        if take == n:
            return src
        at = np.linspace(0, take - 1, n)
        return np.stack([np.interp(at, np.arange(take), src[:, c]) for c in range(2)], axis=1)

@functools.cache
def _sdl_library() -> ctypes.CDLL | None:
    """The SDL2 library pygame loaded (ctypes releases the GIL around its calls)."""
    if sys.platform.startswith("linux"):
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libSDL2-2" in line}
    else:
        base = os.path.dirname(pygame.__file__)
        paths = {p for pattern in ("libSDL2-2*.dylib", ".dylibs/libSDL2-2*.dylib", "SDL2.dll")
                 for p in glob.glob(os.path.join(base, pattern))}
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def audio_driver() -> str:
    """The SDL audio driver in use (dummy and disk do not keep real time)."""
    library = _sdl_library()
    if library is None:
        return os.environ.get("SDL_AUDIODRIVER", "unknown")
    library.SDL_GetCurrentAudioDriver.restype = ctypes.c_char_p
    name = library.SDL_GetCurrentAudioDriver()
    return name.decode() if name else "none"


def _default_output_name() -> str | None:
    """The system's default output device, as SDL names it (pygame can only open devices by
    name, and the first listed one is not always the default)."""
    library = _sdl_library()
    if library is None or not hasattr(library, "SDL_GetDefaultAudioInfo"):     # SDL < 2.24
        return None
    name = ctypes.c_void_p()
    spec = ctypes.create_string_buffer(64)                 # SDL_AudioSpec (32 bytes)
    if library.SDL_GetDefaultAudioInfo(ctypes.byref(name), spec, 0) != 0 or not name.value:
        return None
    try:
        return ctypes.string_at(name.value).decode("utf-8", "replace")
    finally:
        library.SDL_free(name)


class _Recorder:
    """Writes what the player heard to a 16-bit WAV from a thread of its own (no disk I/O in
    the audio callback)."""

    def __init__(self, path: str) -> None:
        self._wav = wave.open(path, "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self._queue: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="game-recorder", daemon=True)
        self._thread.start()

    def put(self, chunk: np.ndarray) -> None:
        self._queue.put(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._wav.writeframes(to_int16(chunk).tobytes())

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)
        self._wav.close()
