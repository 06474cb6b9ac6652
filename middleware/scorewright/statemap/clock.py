"""The musical clock: frames, beats and tempo, and the markers a frame holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..audio import FRAME_SECONDS
from ..conditioning import frame_offset

TEMPO_GLIDE_S = 1.5          # time constant of tempo changes


@dataclass(frozen=True)
class Marker:
    """A musical moment inside a frame: `offset` is its sample offset from the frame start."""

    kind: str            # beat | bar | transition | stinger
    offset: int
    beat: float
    bar: int
    name: str = ""


def boundary(beat: float, at: str, beats_per_bar: int, bars: int = 1) -> float:
    """Beat position where a change requested at `beat` lands."""
    if at == "immediate":
        return beat
    if at == "beat":
        return math.ceil(beat - 1e-9)
    return (math.ceil(beat / beats_per_bar - 1e-9) + bars - 1) * beats_per_bar


class Clock:
    """Frame count, beat position and tempo; collects the markers of the frame being made.

    Between `begin_frame` and `end_frame` the frame spans beats [beat, frame_end); `landed` is
    the earliest beat where a change landed in it (None: nothing did)."""

    def __init__(self, beats_per_bar: int, marker_kinds: tuple[str, ...], tempo: float) -> None:
        self.beats_per_bar, self.kinds = beats_per_bar, marker_kinds
        self.frame, self.beat, self.tempo = 0, 0.0, tempo
        self.markers: list[Marker] = []
        self.landed: float | None = None
        self.beats_per_frame = tempo / 60 * FRAME_SECONDS
        self.frame_end = self.beats_per_frame

    @property
    def seconds(self) -> float:
        return self.frame * FRAME_SECONDS

    def begin_frame(self) -> None:
        """Start the next frame: its beat span, and its beat and bar markers."""
        self.beats_per_frame = self.tempo / 60 * FRAME_SECONDS
        self.frame_end = self.beat + self.beats_per_frame
        self.markers = []
        self.landed = None
        b = math.ceil(self.beat - 1e-9)
        while b < self.frame_end - 1e-9:
            if b % self.beats_per_bar == 0:
                self.mark("bar", b)
            self.mark("beat", b)
            b += 1

    def inside(self, beat: float) -> bool:
        """Does `beat` fall before the end of this frame?"""
        return beat < self.frame_end - 1e-9

    def land(self, beat: float) -> None:
        """A change lands at `beat` (inside this frame; earlier beats mean its first sample)."""
        beat = max(beat, self.beat)
        self.landed = beat if self.landed is None else min(self.landed, beat)

    def mark(self, kind: str, beat: float, name: str = "") -> None:
        """A marker at `beat` (inside this frame), if the map asked for this kind."""
        if kind in self.kinds:
            self.markers.append(Marker(kind, frame_offset(beat, self.beat, self.tempo), beat,
                                       int(beat // self.beats_per_bar), name))

    def glide_tempo(self, target: float | None) -> None:
        """Move the tempo toward `target` (a finite bpm; anything else is ignored)."""
        if target and math.isfinite(target):
            self.tempo += (1.0 - math.exp(-FRAME_SECONDS / TEMPO_GLIDE_S)) * (target - self.tempo)

    def end_frame(self) -> None:
        self.beat = self.frame_end
        self.frame += 1

    def adopt(self, old: Clock) -> None:
        self.frame, self.beat, self.tempo = old.frame, old.beat, old.tempo
