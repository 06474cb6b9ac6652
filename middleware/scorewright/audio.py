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


MAX_CLIP_SECONDS = 60


def read_audio(path: str | Path, max_seconds: float = MAX_CLIP_SECONDS) -> tuple[np.ndarray, int]:
    """Read WAV, FLAC or Ogg (any bit depth, via libsndfile) as float32 [n, channels] and its
    sample rate; longer files are cut to `max_seconds`. Raises ValueError for unreadable files."""
    import soundfile
    try:
        info = soundfile.info(str(path))
        frames = min(info.frames, int(max_seconds * info.samplerate))
        data, sr = soundfile.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise ValueError(f"cannot read audio file {path}: {e}") from None
    return data, sr
