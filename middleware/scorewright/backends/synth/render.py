"""SoundFont playback of note events with sample-accurate timing (tinysoundfont)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from ...audio import CHANNELS, SAMPLE_RATE
from ...frozen import bundle_path
from ..base import BackendUnavailable
from .arranger import DRUM_CHANNEL

KNEE = 0.7          # soft clipping starts here; output never reaches 1.0
TARGET_RMS = 0.1    # slow leveller: quiet styles are lifted, loud ones held back (2:1)
LEVEL_TAU_FRAMES = 40
GAIN_RANGE = (0.5, 4.0)


class SoundFontUnavailable(BackendUnavailable):
    """No usable General MIDI SoundFont or tinysoundfont is missing."""


def default_soundfont() -> Path:
    """$SCOREWRIGHT_SOUNDFONT, else a bundle's own soundfont.sf2 (`scorewright bundle
    --soundfont`), else the GM SoundFont (TimGM6mb) that pretty_midi ships."""
    env = os.environ.get("SCOREWRIGHT_SOUNDFONT")
    if env:
        path = Path(env)
        if not path.is_file():
            raise SoundFontUnavailable(f"SCOREWRIGHT_SOUNDFONT={env}: no such file")
        return path
    shipped = bundle_path("soundfont.sf2")
    if shipped is not None:
        return shipped
    spec = importlib.util.find_spec("pretty_midi")
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"
        if path.is_file():
            return path
    raise SoundFontUnavailable(
        "no General MIDI SoundFont found: `pip install pretty_midi` (it ships TimGM6mb.sf2) "
        "or set SCOREWRIGHT_SOUNDFONT=/path/to/font.sf2")


def soft_clip(x: np.ndarray) -> np.ndarray:
    """Identity below KNEE, tanh-shaped above it, so peaks never reach full scale."""
    a = np.abs(x)
    over = a > KNEE
    if not over.any():
        return x
    y = x.copy()
    y[over] = np.sign(x[over]) * (KNEE + (1 - KNEE) * 0.98 * np.tanh((a[over] - KNEE) / (1 - KNEE)))
    return y


class SoundFontRenderer:
    """16 MIDI channels over one SoundFont; renders float32 [n, 2] blocks."""

    def __init__(self, soundfont: Path | None = None) -> None:
        try:
            import tinysoundfont
        except ImportError as e:
            raise SoundFontUnavailable(
                "tinysoundfont is missing: run `pip install --no-deps tinysoundfont`") from e
        self._path = soundfont or default_soundfont()
        self._tsf = tinysoundfont.Synth(samplerate=SAMPLE_RATE)
        self._sfid = self._tsf.sfload(str(self._path), max_voices=160)
        self._volume: dict[int, int] = {}
        self._program: dict[int, int] = {}
        self.reset()

    def reset(self) -> None:
        self._tsf.sounds_off()
        self._tsf.generate_simple(4800)       # let the quick release of cut voices run out
        self._volume.clear()
        self._program.clear()
        self._level = TARGET_RMS
        self._gain = 1.0
        self._tsf.program_select(DRUM_CHANNEL, self._sfid, 128, 0, is_drums=True)
        for ch in range(16):
            if ch != DRUM_CHANNEL:
                self.program(ch, 0)

    def program(self, channel: int, program: int) -> None:
        if self._program.get(channel) != program:
            self._tsf.notes_off(channel)
            self._tsf.program_select(channel, self._sfid, 0, program)
            self._program[channel] = program

    def volume(self, channel: int, level: float) -> None:
        v = int(np.clip(round(127 * level), 0, 127))
        if self._volume.get(channel) != v:
            self._tsf.control_change(channel, 7, v)
            self._volume[channel] = v

    def pan(self, channel: int, pan: float) -> None:
        self._tsf.control_change(channel, 10, int(np.clip(round(64 + 63 * pan), 0, 127)))

    def play(self, events: list[tuple[int, int, int, int]], n: int) -> np.ndarray:
        """Synthesise n sample pairs as they are (no levelling); events are (sample offset,
        channel, note, velocity 0=off). Channel changes made between two calls take effect
        at the joint, so a frame can be played in parts."""
        buf = bytearray(n * CHANNELS * 4)
        view = memoryview(buf)
        pos = 0
        for offset, ch, note, vel in sorted(events, key=lambda e: e[0]):
            if offset > pos:
                self._tsf.generate_simple(offset - pos, buffer=view[pos * 8: offset * 8])
                pos = offset
            if vel > 0:
                self._tsf.noteon(ch, note, vel)
            else:
                self._tsf.noteoff(ch, note)
        if pos < n:
            self._tsf.generate_simple(n - pos, buffer=view[pos * 8: n * 8])
        return np.frombuffer(buf, dtype=np.float32).reshape(n, CHANNELS)

    def finish(self, pcm: np.ndarray) -> np.ndarray:
        """A played block levelled and soft-clipped: what goes out."""
        return soft_clip(self._levelled(pcm))

    def _levelled(self, pcm: np.ndarray) -> np.ndarray:
        """Slow 2:1 levelling toward TARGET_RMS; the gain ramps across the block (no zipper).
        Causal: a block's gain comes from the blocks before it, so nothing in a block changes
        the samples ahead of it."""
        gain = float(np.clip((TARGET_RMS / self._level) ** 0.5, *GAIN_RANGE))
        ramp = np.linspace(self._gain, gain, len(pcm), dtype=np.float32)[:, None]
        self._gain = gain
        rms = float(np.sqrt(np.mean(np.square(pcm)))) if len(pcm) else 0.0
        self._level += (max(rms, 1e-4) - self._level) / LEVEL_TAU_FRAMES
        return pcm * ramp
