"""Tiny MusicCoCa stand-in files with the official interfaces, for testing our TFLite path offline.

    python scripts/make_musiccoca_fixtures.py                  # all files
    python scripts/make_musiccoca_fixtures.py mapper.tflite    # only the named ones

writes tests/fixtures/musiccoca_tiny/. The official MusicCoCa files cannot be downloaded here, so
this builds small random models with the same inputs and outputs, and tests run scorewright's
MusicCoCa class (and, in scripts/make_mrt2_fixtures.py, the official one) through the real
SentencePiece and LiteRT interpreters. Needs TensorFlow: when this Python lacks it, the script
makes .venv-musiccoca-fixtures (tensorflow-cpu, sentencepiece; ~1 GB, a few minutes) and re-runs
itself there.

- spm.model: a 48-piece unigram SentencePiece model trained on a few music prompts;
- text_encoder.tflite: int32 ids [1,128] + float32 paddings [1,128] -> float32 [1,768]
  (mean of unpadded token embeddings, projected, L2-normalised);
- audio_preprocessor.tflite: float32 [1,160000] (10 s at 16 kHz) -> float32 [1,100,16] log-energies;
- music_encoder.tflite: float32 [1,100,16] -> float32 [1,768] (not normalised);
- pretrained_vector_quantizer.tflite: float32 [1,768] -> int32 [1,12] residual-VQ codes (0..1023);
- mapper.tflite: float32 embedding [1,768] + float32 noise [1,768] -> float32 [1,768], a low-rank
  map of the embedding plus a little noise, not normalised (the official code normalises after it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from side_venv import run_inside

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "musiccoca_tiny"
VENV = ROOT / ".venv-musiccoca-fixtures"
PROMPTS = ["calm ambient synth pads", "soft piano", "driving orchestral percussion", "urgent strings",
           "sad solo cello", "dark ambient drones", "bright marimba", "heavy metal guitar riff",
           "lofi hip hop beat", "epic choir and brass", "playful pizzicato", "tense horror atmosphere"]


def ensure_tensorflow() -> None:
    run_inside(VENV, ["sentencepiece", "tensorflow"], ["tensorflow-cpu", "sentencepiece"], __file__)


def convert(fn, signature, path: Path) -> None:
    import tensorflow as tf
    concrete = tf.function(fn, input_signature=signature).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    path.write_bytes(conv.convert())


def spm_model(rng: np.random.Generator) -> None:
    import sentencepiece as spm
    corpus = OUT / "corpus.txt"
    corpus.write_text("\n".join(PROMPTS * 4))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(OUT / "spm"), vocab_size=48,
                                   model_type="unigram", bos_id=1, eos_id=2, unk_id=3, pad_id=0)
    corpus.unlink()
    (OUT / "spm.vocab").unlink()


def text_encoder(rng: np.random.Generator) -> None:
    import tensorflow as tf
    emb = tf.constant(rng.standard_normal((64, 32)), tf.float32)
    proj = tf.constant(rng.standard_normal((32, 768)) / 6, tf.float32)

    def text(ids, paddings):
        keep = 1.0 - paddings
        e = tf.gather(emb, ids) * keep[..., None]
        pooled = tf.reduce_sum(e, 1) / tf.reduce_sum(keep, 1, keepdims=True)
        return tf.math.l2_normalize(tf.matmul(pooled, proj), axis=-1)

    convert(text, [tf.TensorSpec([1, 128], tf.int32), tf.TensorSpec([1, 128], tf.float32)],
            OUT / "text_encoder.tflite")


def audio_models(rng: np.random.Generator) -> None:
    import tensorflow as tf

    def prep(wave):
        frames = tf.reshape(wave, [1, 100, 16, 100])
        return tf.math.log(tf.reduce_mean(tf.square(frames), -1) + 1e-6)

    convert(prep, [tf.TensorSpec([1, 160000], tf.float32)], OUT / "audio_preprocessor.tflite")
    w_music = tf.constant(rng.standard_normal((16, 768)) / 4, tf.float32)

    def music(feats):
        return tf.matmul(tf.reduce_mean(feats, 1), w_music) / 40.0

    convert(music, [tf.TensorSpec([1, 100, 16], tf.float32)], OUT / "music_encoder.tflite")


def quantizer(rng: np.random.Generator) -> None:
    import tensorflow as tf
    # RVQ with 1024 codes per level, in an 8-d projection of the embedding to keep the file small
    to_8 = tf.constant(rng.standard_normal((768, 8)), tf.float32)
    books = tf.constant(rng.standard_normal((12, 1024, 8)) * 0.5, tf.float32)

    def quantize(x):
        residual, codes = tf.matmul(x, to_8), []
        for level in range(12):
            d = tf.reduce_sum(tf.square(residual[:, None, :] - books[level][None]), -1)
            c = tf.argmin(d, axis=-1, output_type=tf.int32)
            residual = residual - tf.gather(books[level], c)
            codes.append(c)
        return tf.stack(codes, -1)

    convert(quantize, [tf.TensorSpec([1, 768], tf.float32)], OUT / "pretrained_vector_quantizer.tflite")


def mapper(rng: np.random.Generator) -> None:
    import tensorflow as tf
    down = tf.constant(rng.standard_normal((768, 16)) / 4, tf.float32)
    up = tf.constant(rng.standard_normal((16, 768)) / 4, tf.float32)

    def mapped(emb, noise):
        return tf.matmul(tf.tanh(tf.matmul(emb, down)), up) + 0.05 * noise

    convert(mapped, [tf.TensorSpec([1, 768], tf.float32), tf.TensorSpec([1, 768], tf.float32)],
            OUT / "mapper.tflite")


# file -> (builder, seed of its random weights)
BUILDERS = {"spm.model": (spm_model, 0), "text_encoder.tflite": (text_encoder, 0),
            "audio_preprocessor.tflite": (audio_models, 1), "music_encoder.tflite": (audio_models, 1),
            "pretrained_vector_quantizer.tflite": (quantizer, 2), "mapper.tflite": (mapper, 3)}


def main() -> None:
    names = sys.argv[1:] or list(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        sys.exit(f"unknown file(s) {', '.join(unknown)}; known: {', '.join(BUILDERS)}")
    ensure_tensorflow()
    OUT.mkdir(parents=True, exist_ok=True)
    for build, seed in dict.fromkeys(BUILDERS[n] for n in names):
        build(np.random.default_rng(seed))
    for f in sorted(OUT.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
