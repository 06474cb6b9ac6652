"""Notes: the game's MIDI notes and the map's motifs as one piano roll per frame."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..conditioning import NOTE_HELD, NOTE_OFF, NOTE_ONSET, free_notes
from .errors import InputError
from .model import Motif


def motif_states(motif: Motif, b0: float, b1: float) -> list[tuple[int, int, float]]:
    """(pitch, onset/held, start beat) for motif notes sounding in the window [b0, b1)
    (motif-relative beats)."""
    out: list[tuple[int, int, float]] = []
    if b1 <= 0 or (not motif.loop and b0 >= motif.length):
        return out
    loop = math.floor(max(b0, 0.0) / motif.length) * motif.length
    bases = (loop - motif.length, loop, loop + motif.length) if motif.loop else (0.0,)
    for base in bases:
        for start, dur, pitch in motif.notes:
            s, e = base + start, base + start + dur
            if b0 <= s < b1 and s >= 0:
                out.append((pitch, NOTE_ONSET, s))
            elif s < b0 < e:
                out.append((pitch, NOTE_HELD, s))
    return out


def transpose_to(key: tuple[int, str] | None) -> int:
    """Semitones from C to a key's root (nearest way), or 0 without a key."""
    if not key:
        return 0
    root = key[0] % 12
    return root - 12 if root > 6 else root


class Notes:
    """The game's notes: onsets this frame, held ones, released ones (off this frame)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.first_onset: float | None = None   # beat of the last frame's first motif onset
        self.held: set[int] = set()
        self.onsets: set[int] = set()
        self.released: set[int] = set()

    def play(self, on: Sequence[int] = (), off: Sequence[int] = ()) -> None:
        for n in (*on, *off):
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 127:
                raise InputError("bad_value", f"notes must be MIDI numbers 0-127, got {n!r}")
        for n in off:
            if n in self.held or n in self.onsets:
                self.held.discard(n)
                self.onsets.discard(n)
                self.released.add(n)
        self.onsets.update(on)

    def vector(self, motifs: Iterable[tuple[Motif, float]], b0: float, b1: float, shift: int) -> np.ndarray:
        """The piano roll of the frame [b0, b1): released notes off, motifs (started at their
        beat; transposed by `shift` where they follow the key), then the game's held notes and
        onsets. Onsets become held notes for the next frames; `first_onset` is the beat of the
        frame's first motif onset."""
        vec = free_notes()
        for n in self.released:
            vec[n] = NOTE_OFF
        self.released.clear()
        self.first_onset = None
        for motif, start in motifs:
            for pitch, state, at in motif_states(motif, b0 - start, b1 - start):
                p = pitch + shift if motif.transpose else pitch
                if 0 <= p <= 127:
                    vec[p] = max(vec[p], state)
                    if state == NOTE_ONSET and (self.first_onset is None or start + at < self.first_onset):
                        self.first_onset = start + at
        for n in self.held:
            vec[n] = max(vec[n], NOTE_HELD)
        for n in self.onsets:
            vec[n] = NOTE_ONSET
        self.held |= self.onsets
        self.onsets.clear()
        return vec
