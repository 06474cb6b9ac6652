"""Audio format constants and small PCM helpers shared by every part."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAMES_PER_SECOND = 25
FRAME_SAMPLES = SAMPLE_RATE // FRAMES_PER_SECOND  # 1920 sample pairs = 40 ms
FRAME_SECONDS = 1.0 / FRAMES_PER_SECOND


def silence(n_samples: int = FRAME_SAMPLES) -> np.ndarray:
    """float32 [n, 2] zeros."""
    return np.zeros((n_samples, CHANNELS), dtype=np.float32)


def to_int16(pcm: np.ndarray) -> np.ndarray:
    """float32 [-1, 1] -> int16, clipped, rounded (deterministic: no dither)."""
    return np.round(np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2")


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float32 [n, channels] as 16-bit PCM WAV (plays everywhere)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(to_int16(pcm).tobytes())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV as float32 [n, channels] and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * w.getsampwidth()}-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return (data.reshape(-1, w.getnchannels()).astype(np.float32) / 32768.0), w.getframerate()
