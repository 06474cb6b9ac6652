"""Conditioning -> the 144 encoder ids of one frame, for each guidance branch.

Ids follow the official runner (core/src/mlx_engine.cpp): channels that were trained with token
dropout take `value + 7` and use id 6 for "masked / model decides"; the guidance-scale channels have
no dropout id and take `bin + 6`, where the bin is round((clamp(scale, -1, 7) + 1) / step).
"""

from __future__ import annotations

import numpy as np

from ...conditioning import Conditioning
from .config import CFG_DRUMS, CFG_STYLE_NOTES, DRUMS, MASK_ID, MUSICCOCA, PIANOROLL

MC = slice(0, MUSICCOCA.channels)
NOTES = slice(MC.stop, MC.stop + PIANOROLL.channels)
DRUM = MC.stop + PIANOROLL.channels
CFG = slice(DRUM + 1, DRUM + 1 + CFG_STYLE_NOTES.channels + CFG_DRUMS.channels)
# The official runner keeps the 6 coarsest MusicCoCa levels and masks the finer 6.
DEFAULT_STYLE_LEVELS = 6


def cfg_bin(scale: float, step: float, max_bin: int) -> int:
    """Guidance scale in [-1, 7] -> its discrete token bin."""
    return int(min(max(round((min(max(scale, -1.0), 7.0) + 1.0) / step), 0), max_bin))


def encode(cond: Conditioning, style_levels: int = DEFAULT_STYLE_LEVELS) -> np.ndarray:
    """The full-conditioning ids [144] of one frame."""
    ids = np.full(MUSICCOCA.channels + PIANOROLL.channels + 1 + 3, MASK_ID, dtype=np.int64)
    if cond.style_tokens is not None:
        st = np.asarray(cond.style_tokens, dtype=np.int64)[:style_levels]
        ids[: len(st)] = np.where(st >= 0, st + MUSICCOCA.code_offset, MASK_ID)
    notes = np.asarray(cond.notes, dtype=np.int64)
    ids[NOTES] = np.where((notes >= 0) & (notes < PIANOROLL.codebook), notes + PIANOROLL.code_offset, MASK_ID)
    if cond.drums in (0, 1):
        ids[DRUM] = cond.drums + DRUMS.code_offset
    off = CFG_STYLE_NOTES.code_offset
    ids[CFG] = [cfg_bin(cond.cfg_style, 0.2, 40) + off, cfg_bin(cond.cfg_notes, 0.2, 40) + off,
                cfg_bin(cond.cfg_drums, 1.0, 8) + CFG_DRUMS.code_offset]
    return ids


def branches(full: np.ndarray, guidance: bool) -> np.ndarray:
    """[G, 144]: the full ids, then (with guidance) style masked, then notes masked."""
    if not guidance:
        return full[None]
    style_masked, notes_masked = full.copy(), full.copy()
    style_masked[MC] = MASK_ID
    notes_masked[NOTES] = MASK_ID
    return np.stack([full, style_masked, notes_masked])
