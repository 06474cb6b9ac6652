"""MusicCoCa through the real SentencePiece and LiteRT interpreters, on tiny stand-in files with the
official interfaces (tests/fixtures/musiccoca_tiny, from scripts/make_musiccoca_fixtures.py), and
the mrt2 backend loaded from a models folder as a user would: `scorewright render --backend mrt2`."""

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("sentencepiece")
torch = pytest.importorskip("torch")

from scorewright.audio import read_audio  # noqa: E402
from scorewright.backends.mrt2 import models  # noqa: E402
from scorewright.backends.mrt2.musiccoca import MusicCoCa, resample  # noqa: E402
from scorewright.cli import main  # noqa: E402

from .mrt2_helpers import write_tiny_checkpoint  # noqa: E402
from .tolerance import rounding_bound, unit_norm_bound  # noqa: E402

TINY = Path(__file__).parent / "fixtures" / "musiccoca_tiny"


@pytest.fixture(scope="module")
def mc():
    return MusicCoCa(TINY)


def test_text_embeddings(mc):
    assert mc.use_mapper                                              # mapper.tflite is in the folder
    a, b = mc.embed_text("soft piano"), mc.embed_text("driving orchestral percussion")
    assert a.shape == (768,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert abs(np.linalg.norm(a) - 1.0) <= unit_norm_bound(len(a))    # the mapper's output, L2-normalised
    assert not np.allclose(a, b)
    assert np.array_equal(mc.embed_text("Soft Piano"), a)          # prompts are lower-cased
    assert np.isfinite(mc.embed_text("epic " * 400)).all()          # long prompts are truncated
    plain = MusicCoCa(TINY, use_mapper=False).embed_text("soft piano")
    assert not np.allclose(plain, a)


def test_the_mapper_is_optional_and_checked(tmp_path):
    folder = tmp_path / "musiccoca"
    shutil.copytree(TINY, folder)
    (folder / models.MAPPER).unlink()
    assert not MusicCoCa(folder).use_mapper                          # absent: text goes unmapped
    with pytest.raises(models.ModelsMissing, match="mapper.tflite"):
        MusicCoCa(folder, use_mapper=True)
    shutil.copy(folder / "text_encoder.tflite", folder / models.MAPPER)
    with pytest.raises(RuntimeError, match="mapper.tflite: expected two 768-float inputs"):
        MusicCoCa(folder).embed_text("soft piano")


def test_audio_embeddings_and_tokens(mc):
    t = np.arange(48_000 * 3) / 48_000
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32)
    e = mc.embed_audio(stereo, 48_000)
    assert e.shape == (768,) and np.isfinite(e).all()
    loud = mc.embed_audio(stereo * 4, 48_000)
    assert not np.allclose(e, loud)
    tok = mc.tokenize(e)
    assert tok.shape == (12,) and tok.min() >= 0 and tok.max() < 1024
    assert np.array_equal(mc.tokenize(e), tok)


def test_models_verify_checks_the_mapper(models_root, monkeypatch, capsys):
    from scorewright.cli import console
    monkeypatch.setattr(console, "width", 300)
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(models_root))
    main(["models", "verify", "small"])      # (fails: the tiny checkpoint is not mrt2_small)
    line = next(r for r in capsys.readouterr().err.splitlines() if models.MAPPER in r)
    assert "ok" in line
    mapper = models.musiccoca_dir(models_root) / models.MAPPER
    good = mapper.read_bytes()
    try:
        mapper.write_bytes((models.musiccoca_dir(models_root) / "text_encoder.tflite").read_bytes())
        assert main(["models", "verify", "small"]) == 1
        assert "expected two 768-float inputs" in capsys.readouterr().err
    finally:
        mapper.write_bytes(good)


def test_resample_keeps_the_pitch():
    t = np.arange(48_000) / 48_000
    y = resample(np.sin(2 * np.pi * 1000 * t), 48_000, 16_000)
    assert len(y) == 16_000
    assert np.argmax(np.abs(np.fft.rfft(y))) == 1000


def test_missing_files_are_named(tmp_path):
    with pytest.raises(models.ModelsMissing, match="spm.model.*scorewright models download"):
        MusicCoCa(tmp_path)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mrt2_models")
    shutil.copytree(TINY, models.musiccoca_dir(root))
    write_tiny_checkpoint(root)
    return root


def test_render_with_the_mrt2_backend_from_a_models_folder(models_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(models_root))
    out = tmp_path / "mrt2.wav"
    assert main(["render", "demo", "--backend", "mrt2", "--seconds", "2", "--out", str(out)]) == 0
    pcm, sr = read_audio(out)
    assert sr == 48_000 and pcm.shape == (96_000, 2) and np.abs(pcm[1920:]).max() > 0


# -- against the official magenta_rt.musiccoca.MusicCoCa on the same stand-in files --------------
# (tests/fixtures/mrt2_runtime.safetensors, scripts/mrt2_runtime_fixtures.py). Both sides run the
# same .tflite files on the same inputs; the bounds allow each stand-in model's accumulations
# (scripts/make_musiccoca_fixtures.py) to be rounded differently by another CPU's kernels.
TEXT_DEPTH = 128 + 32 + 768         # mean over the ids, projection (fan-in 32), L2 norm
MAPPER_DEPTH = 768 + 16 + 768       # down (fan-in 768), up (16), our L2 norm
AUDIO_DEPTH = 100 + 100 + 16 + 4    # mean energy of 100 samples, mean of 100 frames, projection, clips


def resample_depth(sr_in: int) -> int:
    """Taps of resampy's kaiser_best filter per output sample (64 zero crossings a side)."""
    return 2 * 64 * int(np.ceil(max(sr_in / 16_000, 1.0))) + 2


@pytest.fixture(scope="module")
def official():
    from safetensors.numpy import load_file
    return load_file(str(Path(__file__).parent / "fixtures" / "mrt2_runtime.safetensors"))


def assert_close(ours, theirs, depth):
    err, tol = np.abs(ours - theirs).max(), rounding_bound(np.abs(theirs).max(), depth)
    assert err <= tol, f"max difference {err:.2e} > {tol:.2e}"


TEXTS = ["Soft Piano", "driving orchestral percussion", "dark ambient drones " * 30]


def test_text_embeddings_as_the_official_class(mc, official):
    plain = MusicCoCa(TINY, use_mapper=False)
    for i, text in enumerate(TEXTS):
        assert_close(plain.embed_text(text), official["mc/text_raw"][i], TEXT_DEPTH)
        assert_close(mc.embed_text(text), official["mc/text_mapped"][i], TEXT_DEPTH + MAPPER_DEPTH)
    assert np.array_equal(mc.tokenize(official["mc/text_mapped"][0]), official["mc/text_mapped_tokens"][0])


@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_audio_embeddings_and_resampling_as_the_official_class(mc, official, name):
    """a: 1.5 s stereo at 48 kHz; b: 10.4 s mono at 11.025 kHz (two clips, the last zero-padded);
    c: 0.5 s at 16 kHz (no resampling)."""
    pcm = official[f"mc/audio_{name}_pcm"].astype(np.float32) / 32768.0
    sr = int(official[f"mc/audio_{name}_sr"][0])
    if sr != 16_000:
        mono = pcm.mean(axis=1)
        assert_close(resample(mono, sr, 16_000), official[f"mc/audio_{name}_16k"], resample_depth(sr))
    assert_close(mc.embed_audio(pcm, sr), official[f"mc/audio_{name}_embedding"],
                 resample_depth(sr) + AUDIO_DEPTH)


def test_the_official_blend_rule(mc, official):
    """The C++ runtime's blend of mapped text and raw audio embeddings (weights 2, 1, 0.5, 0):
    exact on the official embeddings, within rounding on ours, and the official tokens of it."""
    from scorewright.backends.mrt2.musiccoca import blend
    w = official["mc/blend_weights"]
    theirs = np.stack([*official["mc/text_mapped"][:2], official["mc/audio_a_embedding"],
                       official["mc/text_mapped"][2]])
    assert np.array_equal(blend(theirs, w), official["mc/blend"])
    pcm = official["mc/audio_a_pcm"].astype(np.float32) / 32768.0
    ours = np.stack([mc.embed_text(TEXTS[0]), mc.embed_text(TEXTS[1]), mc.embed_audio(pcm, 48_000),
                     mc.embed_text(TEXTS[2])])
    assert_close(blend(ours, w), official["mc/blend"], resample_depth(48_000) + AUDIO_DEPTH + MAPPER_DEPTH)
    assert np.linalg.norm(official["mc/blend"]) != pytest.approx(1.0, abs=0.05)   # not renormalised
    assert np.array_equal(mc.tokenize(official["mc/blend"]), official["mc/blend_tokens"])
