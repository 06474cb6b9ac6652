"""Audio descriptors (loudness, brightness, onset rate, tempo, pitch) used by the synth's
audio prompts, the tests and the benchmarks."""

from __future__ import annotations

import numpy as np

from ...audio import SAMPLE_RATE


def mono(pcm: np.ndarray) -> np.ndarray:
    return pcm.mean(axis=1) if pcm.ndim == 2 else pcm


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))


def spectral_centroid(pcm: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Power-weighted mean frequency in Hz."""
    x = mono(pcm)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float((spec * freqs).sum() / max(spec.sum(), 1e-20))


def onset_envelope(pcm: np.ndarray, sr: int = SAMPLE_RATE, hop: int = 480) -> np.ndarray:
    """Half-wave rectified rise of the log energy per hop (10 ms at 48 kHz)."""
    x = mono(pcm)
    n = len(x) // hop
    energy = np.log1p(1000 * np.square(x[: n * hop].reshape(n, hop)).mean(axis=1))
    return np.maximum(np.diff(energy, prepend=energy[:1]), 0.0)


def onset_rate(pcm: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Onsets per second: peaks of the onset envelope above an adaptive threshold."""
    env = onset_envelope(pcm, sr)
    if len(env) < 3:
        return 0.0
    thr = env.mean() + env.std()
    peaks = (env[1:-1] > thr) & (env[1:-1] >= env[:-2]) & (env[1:-1] > env[2:])
    return float(peaks.sum() / (len(mono(pcm)) / sr))


def tempo_estimate(pcm: np.ndarray, sr: int = SAMPLE_RATE, lo: float = 50, hi: float = 190) -> float:
    """Tempo in BPM from the autocorrelation of the onset envelope (0 when none is found)."""
    hop = 480
    env = onset_envelope(pcm, sr, hop)
    env = env - env.mean()
    if len(env) < 4 or not env.any():
        return 0.0
    ac = np.correlate(env, env, mode="full")[len(env) - 1:]
    fps = sr / hop
    lags = np.arange(len(ac))
    ok = (lags >= fps * 60 / hi) & (lags <= fps * 60 / lo)
    if not ok.any():
        return 0.0
    best = lags[ok][np.argmax(ac[ok])]
    return float(60 * fps / best)


def peak_frequency(pcm: np.ndarray, sr: int = SAMPLE_RATE, fmin: float = 50.0) -> float:
    """Frequency (Hz) of the strongest spectral peak above fmin."""
    x = mono(pcm)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    spec[freqs < fmin] = 0
    return float(freqs[int(np.argmax(spec))])


def midi_to_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def high_band_share(pcm: np.ndarray, cutoff: float = 6000.0, sr: int = SAMPLE_RATE) -> float:
    """Share of spectral power above `cutoff` (cymbals, hats, snares live here)."""
    spec = np.abs(np.fft.rfft(mono(pcm))) ** 2
    freqs = np.fft.rfftfreq(len(mono(pcm)), 1.0 / sr)
    return float(spec[freqs > cutoff].sum() / max(spec.sum(), 1e-20))
