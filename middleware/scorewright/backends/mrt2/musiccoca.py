"""MusicCoCa style embeddings from the official TFLite files (run with ai-edge-litert), prepared as
the official magenta_rt.musiccoca.MusicCoCa prepares them.

Text: SentencePiece ids of the lower-cased prompt after a start id 1, padded to 128 with a float
padding mask -> 768-d embedding; where mapper.tflite is present (optional, as in the C++ runtime)
the embedding goes through it with seed-0 Gaussian noise and is L2-normalised. Audio: mono
(channel mean), resampled to 16 kHz with resampy's kaiser_best filter, 10 s clips (the last
zero-padded) through the preprocessor and the music encoder, averaged; no normalisation.
Tokens: the pretrained RVQ quantizer -> 12 ids.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from .models import MAPPER, MUSICCOCA_FILES, ModelsMissing

SAMPLE_RATE = 16_000
CLIP_SECONDS = 10.0
MAX_TEXT = 128
START_ID = 1
EMBED_DIM = 768
LEVELS = 12
MAPPER_SEED = 0     # the noise seed of every official entry point (Python use_mapper=True, C++)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """float32 resampling with resampy's default kaiser_best filter (what the official
    audio.Waveform.resample uses)."""
    x = np.asarray(x, np.float32)
    if sr_in == sr_out or len(x) == 0:
        return x
    try:
        import resampy
    except ImportError as e:
        raise RuntimeError("audio prompts need resampy: pip install 'scorewright[mrt2]'") from e
    return resampy.resample(x, sr_in, sr_out, axis=-1).astype(np.float32)


def blend(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The C++ runtime's blend of embeddings [n, 768] by weights [n]: those with weight > 0,
    each times weight / (sum of those weights), added in order in float32; not renormalised."""
    w = np.asarray(weights, np.float32)
    keep = [i for i, x in enumerate(w) if x > 0]
    total = np.float32(0)
    for i in keep:
        total = np.float32(total + w[i])
    acc = np.zeros(np.shape(vectors)[1], np.float32)
    for i in keep:
        acc += np.float32(w[i] / total) * np.asarray(vectors[i], np.float32)
    return acc


def open_interpreter(path: Path):
    """A LiteRT interpreter for one .tflite file, tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise RuntimeError("MusicCoCa needs ai-edge-litert: pip install 'scorewright[mrt2]'") from e
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    return interp


def open_mapper(path: Path):
    """mapper.tflite's interpreter, checked: two 768-float inputs (embedding, noise) and one
    768-float output, as the C++ runtime requires."""
    interp = open_interpreter(path)
    ins, outs = interp.get_input_details(), interp.get_output_details()
    sizes = [int(np.prod(d["shape"])) for d in (*ins, *outs[:1])]
    if len(ins) != 2 or sizes != [EMBED_DIM] * 3:
        raise RuntimeError(f"{path}: expected two {EMBED_DIM}-float inputs (embedding, noise) and a "
                           f"{EMBED_DIM}-float output; delete it to run without the mapper, or download "
                           "it again")
    return interp


class MusicCoCa:
    """The official files in `folder`; `use_mapper` None = use mapper.tflite when it is there."""

    def __init__(self, folder: Path, use_mapper: bool | None = None):
        self.folder = Path(folder)
        missing = [f for f in MUSICCOCA_FILES if not (self.folder / f).is_file()]
        if use_mapper and not (self.folder / MAPPER).is_file():
            missing.append(MAPPER)
        if missing:
            raise ModelsMissing(f"MusicCoCa files missing in {self.folder}: {', '.join(missing)}. "
                                "Run `scorewright models download small` (or base).")
        self.use_mapper = (self.folder / MAPPER).is_file() if use_mapper is None else use_mapper

    def _interpreter(self, name: str):
        return open_interpreter(self.folder / name)

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

    @cached_property
    def _mapper(self):
        return open_mapper(self.folder / MAPPER)

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
        emb = interp.get_tensor(interp.get_output_details()[0]["index"]).reshape(-1).astype(np.float32)
        return self.map_text(emb) if self.use_mapper else emb

    def map_text(self, emb: np.ndarray, seed: int = MAPPER_SEED) -> np.ndarray:
        """A text embedding through mapper.tflite (input 0: the embedding, input 1: numpy
        RandomState(seed) Gaussian noise), L2-normalised."""
        m = self._mapper
        ins = m.get_input_details()
        noise = np.random.RandomState(seed).randn(EMBED_DIM).astype(np.float32)
        m.set_tensor(ins[0]["index"], np.asarray(emb, np.float32).reshape(ins[0]["shape"]))
        m.set_tensor(ins[1]["index"], noise.reshape(ins[1]["shape"]))
        m.invoke()
        out = m.get_tensor(m.get_output_details()[0]["index"]).reshape(-1).astype(np.float32)
        return out / np.linalg.norm(out)

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
