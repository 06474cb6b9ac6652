"""Per-frame conditioning (the contract between director and backends) and style blending."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .audio import FRAME_SAMPLES, SAMPLE_RATE

# piano-roll states per pitch: free (the model decides whether it sounds), off, held (on since an
# earlier frame), onset (starts this frame), on (sounding; the model decides onset or held)
NOTE_FREE, NOTE_OFF, NOTE_HELD, NOTE_ONSET, NOTE_ON = -1, 0, 1, 2, 3
MAX_STYLE_WEIGHT = 100.0     # style and prompt weights are relative; their float32 sums stay finite
DRUMS_FREE, DRUMS_OFF, DRUMS_ON = -1, 0, 1


def free_notes() -> np.ndarray:
    """A piano roll with every pitch left to the model."""
    return np.full(128, NOTE_FREE, dtype=np.int8)


@dataclass
class Conditioning:
    """Everything a backend needs to generate one 40 ms frame.

    `beat` is the musical position (in beats since the stream started) of the frame's first
    sample; with `tempo_bpm` it places every note of the frame on the shared beat clock.
    `change_beat` is where, inside the frame, what the director landed in it takes effect (a
    stinger's start or end, a transition, a motif note): before it the previous frame's
    conditioning still holds; None means from the frame's first sample.
    `weights` names the blended styles, for display and telemetry only.
    """

    style: np.ndarray
    notes: np.ndarray = field(default_factory=free_notes)
    drums: int = DRUMS_FREE
    style_tokens: np.ndarray | None = None
    cfg_style: float = 1.0
    cfg_notes: float = 1.0
    cfg_drums: float = 1.0
    temperature: float = 1.0
    top_k: int = 40
    seed: int = 0
    tempo_bpm: float = 120.0
    beat: float = 0.0
    beats_per_bar: int = 4
    change_beat: float | None = None
    weights: dict[str, float] = field(default_factory=dict)


def frame_offset(beat: float, frame_beat: float, tempo_bpm: float) -> int:
    """Sample offset of `beat` from the first sample of a frame that starts at `frame_beat`,
    rounded to the nearest sample and kept inside the frame: where markers put a beat and
    where backends play it."""
    offset = round((beat - frame_beat) * 60 * SAMPLE_RATE / tempo_bpm)
    return min(FRAME_SAMPLES - 1, max(0, offset))


def unit(v: np.ndarray) -> np.ndarray:
    """L2-normalise (a zero vector stays zero)."""
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


def blend_styles(embeddings: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of unit style embeddings, renormalised to unit length."""
    dim = len(next(iter(embeddings.values())))
    acc = np.zeros(dim, dtype=np.float64)
    for name, w in weights.items():
        if w > 0:
            acc += w * unit(embeddings[name])
    return unit(acc)
