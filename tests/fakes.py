"""Small backends for tests: deterministic style vectors from text, a steady tone as audio."""

from __future__ import annotations

import hashlib
import time

import numpy as np

from scorewright.audio import FRAME_SAMPLES
from scorewright.backends.base import Backend
from scorewright.conditioning import Conditioning

DIM = 16


def fake_embed(text: str) -> np.ndarray:
    """A unit vector that depends only on the text."""
    rng = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))
    v = rng.normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class ToneBackend(Backend):
    """A steady tone; can be made slow or faulty on chosen calls, given a key and a tempo."""

    name = "tone"
    style_dim = DIM

    def __init__(self, slow_frames=(), slow_s=0.0, fail_frames=(), key=None, tempo=None):
        self.n, self.calls, self.slow_s = 0, 0, slow_s
        self.slow_frames, self.fail_frames = set(slow_frames), set(fail_frames)
        self._key, self._tempo = key, tempo

    def embed_text(self, text):
        return fake_embed(text)

    def embed_audio(self, pcm, sr):
        return fake_embed("audio")

    def key(self):
        return self._key

    def preferred_tempo(self, style):
        return self._tempo

    def reset(self, seed=None):
        self.n = 0

    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        k, self.n = self.n, self.n + 1
        call, self.calls = self.calls, self.calls + 1      # counted across resets
        if call in self.fail_frames:
            raise RuntimeError("boom")
        if call in self.slow_frames:
            time.sleep(self.slow_s)
        t = (np.arange(FRAME_SAMPLES * n_frames) + k * FRAME_SAMPLES) / 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        return np.stack([tone, tone], axis=1)
