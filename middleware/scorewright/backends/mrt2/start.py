"""How a stream starts, as in the official runtime.

By default a stream starts from the model's start state: previous frame = the start frame (id 0 at
every level), empty caches, a codec that has decoded nothing (so the first 40 ms out are silent,
the codec's lookahead). That is the official default too.

The official silence prefill is opt-in (hello_mrt2 --prefill-silence, the apps' "Silent Prefill";
core/src/mlx_engine.cpp prefill_silence): 550 frames of the tokens of silence go through the model
as forced tokens (see Sampler.prefill: frames 0..548 enter the caches, frame 549 is left as the
previous frame, the start frame never enters them), and the codec decodes frames 0..548. During it
the style and the notes are masked, drums are masked (or "no drums" when the stream is drumless)
and the guidance-scale ids follow the current scales. The state after it is where later resets
land. Our negative branches see the same conditioning as the full one then (style and notes are
masked anyway); the official runtime feeds them whatever negatives its last frame left (zeros
before the first frame), which only shapes those branches' caches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...conditioning import DRUMS_FREE, DRUMS_OFF, Conditioning
from . import tokens

PREFILL_FRAMES = 550            # official duration: 22 s, more than the receptive field (492 / 500)
SILENCE_SAMPLES = 1_344_000     # 28 s at 48 kHz, the official encoder's input for the silent token


@dataclass(frozen=True)
class StartKey:
    """What the prefill depends on: the guidance scales and whether the stream is drumless."""

    cfg_style: float
    cfg_notes: float
    cfg_drums: float
    drumless: bool

    @classmethod
    def of(cls, cond: Conditioning) -> StartKey:
        return cls(cond.cfg_style, cond.cfg_notes, cond.cfg_drums, cond.drums == DRUMS_OFF)


def silent_frame(encoder, device: torch.device) -> torch.Tensor:
    """The 12 codes of silence: frame max(25, T // 2) of 28 s of encoded zeros."""
    codes = encoder.encode(torch.zeros(1, SILENCE_SAMPLES, 2, device=device))
    return codes[0, max(25, codes.shape[1] // 2)]


def prefill_ids(key: StartKey, guidance: bool) -> np.ndarray:
    """[G, 144] conditioning of every prefill frame: style, notes masked; drums masked or off."""
    cond = Conditioning(style=np.zeros(0, np.float32), drums=DRUMS_OFF if key.drumless else DRUMS_FREE,
                        cfg_style=key.cfg_style, cfg_notes=key.cfg_notes, cfg_drums=key.cfg_drums)
    return tokens.branches(tokens.encode(cond), guidance)
