"""Conditioning -> the 144 encoder ids of one frame, for each guidance branch.

As in every official runtime (magenta_rt jax/mlx `_build_conditioning`, and the exported .mlxfn the
C++ runtime calls), each value goes in as `value + 7`, and id 6 means "masked: the model decides".
That includes the three guidance-scale channels: their bin, round((clamp(scale, -1, 7) + 1) / step)
clamped to the codebook, is sent as `bin + 7`, although their embedding tables have 41 + 6 and
9 + 6 rows. So the top bins land where they land officially: a style or notes scale of 6.9 or more
(bin 40, id 47) reads row 0 of the next channel, and a drums scale of 6.5 or more (bin 8, id 15)
reads an untrained padding row of the shared table.

Notes: with onsets "mask" (the C++ runtime's default) every sounding pitch is sent as state 3 (on:
the model decides onset or continuation); with "unmask" held pitches are sent as 1 and onsets as 2.
"""

from __future__ import annotations

import numpy as np

from ...conditioning import NOTE_HELD, NOTE_ON, NOTE_ONSET, Conditioning
from .config import CFG_DRUMS, CFG_STYLE_NOTES, COND_WIDTH, MASK_ID, MUSICCOCA, PIANOROLL, VALUE_OFFSET

MC = slice(0, MUSICCOCA.channels)
NOTES = slice(MC.stop, MC.stop + PIANOROLL.channels)
DRUM = MC.stop + PIANOROLL.channels
CFG = slice(DRUM + 1, DRUM + 1 + CFG_STYLE_NOTES.channels + CFG_DRUMS.channels)
# The C++ runtime keeps the 6 coarsest MusicCoCa levels and masks the finer 6 (the Python
# systems send all 12).
DEFAULT_STYLE_LEVELS = 6
ONSET_MODES = ("mask", "unmask")
CFG_STEP_STYLE_NOTES, CFG_STEP_DRUMS = 0.2, 1.0


def cfg_bin(scale: float, step: float, max_bin: int) -> int:
    """Guidance scale -> its bin: clamp to [-1, 7], round((s + 1) / step) half to even in float64,
    clamp to [0, max_bin] (official `discretize_cfg`)."""
    return int(min(max(round((min(max(scale, -1.0), 7.0) + 1.0) / step), 0), max_bin))


def cfg_ids(style: float, notes: float, drums: float) -> list[int]:
    """The three guidance-scale ids (style, notes, drums)."""
    return [cfg_bin(style, CFG_STEP_STYLE_NOTES, CFG_STYLE_NOTES.codebook - 1) + VALUE_OFFSET,
            cfg_bin(notes, CFG_STEP_STYLE_NOTES, CFG_STYLE_NOTES.codebook - 1) + VALUE_OFFSET,
            cfg_bin(drums, CFG_STEP_DRUMS, CFG_DRUMS.codebook - 1) + VALUE_OFFSET]


def note_states(notes: np.ndarray, onsets: str = "mask") -> np.ndarray:
    """The piano-roll states sent to the model: with "mask", held and onset become 3 (on)."""
    if onsets not in ONSET_MODES:
        raise ValueError(f"onsets must be one of {', '.join(ONSET_MODES)}, got {onsets!r}")
    states = np.asarray(notes, dtype=np.int64)
    if onsets == "mask":
        states = np.where((states == NOTE_HELD) | (states == NOTE_ONSET), NOTE_ON, states)
    return states


def encode(cond: Conditioning, style_levels: int = DEFAULT_STYLE_LEVELS, onsets: str = "mask") -> np.ndarray:
    """The full-conditioning ids [144] of one frame."""
    ids = np.full(COND_WIDTH, MASK_ID, dtype=np.int64)
    if cond.style_tokens is not None:
        st = np.asarray(cond.style_tokens, dtype=np.int64)[:style_levels]
        ids[: len(st)] = np.where(st >= 0, st + VALUE_OFFSET, MASK_ID)
    notes = note_states(cond.notes, onsets)
    ids[NOTES] = np.where((notes >= 0) & (notes < PIANOROLL.codebook), notes + VALUE_OFFSET, MASK_ID)
    if cond.drums in (0, 1):
        ids[DRUM] = cond.drums + VALUE_OFFSET
    ids[CFG] = cfg_ids(cond.cfg_style, cond.cfg_notes, cond.cfg_drums)
    return ids


def branches(full: np.ndarray, guidance: bool) -> np.ndarray:
    """[G, 144]: the full ids, then (with guidance) style masked, then notes masked; drums and the
    guidance-scale ids stay as they are in every branch."""
    if not guidance:
        return full[None]
    style_masked, notes_masked = full.copy(), full.copy()
    style_masked[MC] = MASK_ID
    notes_masked[NOTES] = MASK_ID
    return np.stack([full, style_masked, notes_masked])
