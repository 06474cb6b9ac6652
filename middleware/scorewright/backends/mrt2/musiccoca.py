"""MusicCoCa style embeddings from the official TFLite files (run with ai-edge-litert).

Text: SentencePiece ids of the lower-cased prompt after a start id 1, padded to 128 with a float
padding mask -> 768-d embedding. Audio: 16 kHz mono, 10 s clips (the last zero-padded) through the
preprocessor and the music encoder, averaged. Tokens: the pretrained RVQ quantizer -> 12 ids.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from .models import MUSICCOCA_FILES, ModelsMissing

SAMPLE_RATE = 16_000
CLIP_SECONDS = 10.0
MAX_TEXT = 128
START_ID = 1
EMBED_DIM = 768
LEVELS = 12


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of a whole clip by truncating/zero-padding its spectrum (numpy only;
    exact enough for an embedding model, and the clip is at most minutes long)."""
    if sr_in == sr_out or len(x) == 0:
        return x.astype(np.float32)
    n_out = int(round(len(x) * sr_out / sr_in))
    spec = np.fft.rfft(x)
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    return (np.fft.irfft(out, n=n_out) * (n_out / len(x))).astype(np.float32)


class MusicCoCa:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        missing = [f for f in MUSICCOCA_FILES if not (self.folder / f).is_file()]
        if missing:
            raise ModelsMissing(f"MusicCoCa files missing in {self.folder}: {', '.join(missing)}. "
                                "Run `scorewright models download small` (or base).")

    def _interpreter(self, name: str):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise RuntimeError("MusicCoCa needs ai-edge-litert: pip install 'scorewright[mrt2]'") from e
        interp = Interpreter(model_path=str(self.folder / name))
        interp.allocate_tensors()
        return interp

    @cached_property
    def _vocab(self):
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor()
        sp.Load(str(self.folder / "spm.model"))
        return sp

    @cached_property
    def _text(self):
        return self._interpreter("text_encoder.tflite")

    @cached_property
    def _prep(self):
        return self._interpreter("audio_preprocessor.tflite")

    @cached_property
    def _music(self):
        return self._interpreter("music_encoder.tflite")

    @cached_property
    def _quantizer(self):
        return self._interpreter("pretrained_vector_quantizer.tflite")

    def embed_text(self, text: str) -> np.ndarray:
        interp = self._text
        inputs = {d["dtype"]: d for d in interp.get_input_details()}
        if np.int32 not in inputs or np.float32 not in inputs:
            raise RuntimeError(f"{self.folder / 'text_encoder.tflite'}: "
                               "expected int32 ids and float32 paddings as inputs")
        ids = [START_ID] + self._vocab.EncodeAsIds(text.lower())[: MAX_TEXT - 1]
        padded = np.zeros(MAX_TEXT, np.int32)
        padded[: len(ids)] = ids
        paddings = np.ones(MAX_TEXT, np.float32)
        paddings[: len(ids)] = 0.0
        interp.set_tensor(inputs[np.int32]["index"], padded.reshape(inputs[np.int32]["shape"]))
        interp.set_tensor(inputs[np.float32]["index"], paddings.reshape(inputs[np.float32]["shape"]))
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"]).reshape(-1).astype(np.float32)

    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray:
        """Mean embedding of the 10 s clips of `pcm` ([n] or [n, channels] float)."""
        mono = np.asarray(pcm, np.float32)
        mono = mono.mean(axis=1) if mono.ndim == 2 else mono
        mono = resample(mono, sr, SAMPLE_RATE)
        clip = int(CLIP_SECONDS * SAMPLE_RATE)
        prep_in = self._prep.get_input_details()[0]
        embs = []
        for start in range(0, max(len(mono), 1), clip):
            x = np.zeros(int(np.prod(prep_in["shape"])), np.float32)
            part = mono[start: start + clip][: len(x)]
            x[: len(part)] = part
            self._prep.set_tensor(prep_in["index"], x.reshape(prep_in["shape"]))
            self._prep.invoke()
            feats = self._prep.get_tensor(self._prep.get_output_details()[0]["index"])
            self._music.set_tensor(self._music.get_input_details()[0]["index"], feats)
            self._music.invoke()
            embs.append(self._music.get_tensor(self._music.get_output_details()[0]["index"]).reshape(-1))
        return np.mean(embs, axis=0).astype(np.float32)

    def tokenize(self, embedding: np.ndarray) -> np.ndarray:
        """768-d embedding -> 12 RVQ ids (0..1023)."""
        q = self._quantizer
        d = q.get_input_details()[0]
        q.set_tensor(d["index"], np.asarray(embedding, np.float32).reshape(d["shape"]))
        q.invoke()
        return q.get_tensor(q.get_output_details()[0]["index"]).reshape(-1)[:LEVELS].astype(np.int64)
