"""The mrt2 backend end to end on a tiny random checkpoint in the official layout: loading from a
models folder, frames out of the Backend protocol, seeds, conditioning reaching the model, a state
map rendered through the engine, the models CLI, and the fallback to synth without weights."""

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scorewright.backends.base import Backend, choose_backend  # noqa: E402
from scorewright.backends.mrt2 import models  # noqa: E402
from scorewright.backends.mrt2.backend import MRT2Backend  # noqa: E402
from scorewright.backends.mrt2.profiles import ENGINE  # noqa: E402
from scorewright.backends.mrt2.spectrostream import SpectroStreamEncoder  # noqa: E402
from scorewright.backends.mrt2.weights import official_state, randomise  # noqa: E402
from scorewright.cli import main  # noqa: E402
from scorewright.conditioning import Conditioning  # noqa: E402
from scorewright.engine import Engine  # noqa: E402
from scorewright.session import make_director  # noqa: E402
from scorewright.statemap.load import load  # noqa: E402

from .mrt2_helpers import CODEC, write_tiny_checkpoint  # noqa: E402
from .tolerance import rounding_bound  # noqa: E402


class HashStyle:
    """A deterministic stand-in for the MusicCoCa TFLite files (not available offline)."""

    def embed_text(self, text):
        seed = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 2**32
        return np.random.default_rng(seed).standard_normal(768).astype(np.float32)

    def embed_audio(self, pcm, sr):
        return self.embed_text(f"audio {len(pcm)} {sr}")

    def tokenize(self, emb):
        return (np.abs(emb[:12]) * 1000).astype(np.int64) % 1024


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_tiny_checkpoint(root)
    return root


@pytest.fixture
def backend(models_root):
    return MRT2Backend(size="small", models_root=models_root, style_model=HashStyle(), seed=3)


def cond(backend, **kw):
    return Conditioning(style=backend.embed_text("dark ambient drones"), **kw)


def test_frames_out_of_the_backend_protocol(backend):
    assert isinstance(backend, Backend)
    out = backend.generate(cond(backend), n_frames=5)
    assert out.shape == (5 * 1920, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out[:1920]).max() == 0 and np.abs(out[1920:]).max() > 0   # the codec's 40 ms lookahead


def test_styles_blend_by_the_official_rule(backend):
    """Embeddings as MusicCoCa gives them, blended as the C++ runtime does: weights > 0 normalised
    to sum 1, a float32 weighted sum, no renormalisation (the quantiser reads magnitudes)."""
    raw = HashStyle().embed_text("dark ambient drones")
    assert np.array_equal(backend.embed_text("dark ambient drones"), raw)
    pcm = np.zeros((4800, 2), np.float32)
    assert np.array_equal(backend.embed_audio(pcm, 48_000), HashStyle().embed_audio(pcm, 48_000))
    assert np.array_equal(backend.style_vector(raw), raw)
    a, b = (v / np.linalg.norm(v) for v in (raw, HashStyle().embed_text("bright marimba")))
    vectors = np.stack([a, b, 3 * a]).astype(np.float32)
    mixed = backend.blend(vectors, np.array([1.0, 3.0, 0.0], np.float32))
    expect = 0.25 * a.astype(np.float64) + 0.75 * b
    # two float32 products and a sum per element, of magnitude <= max |a|, |b|
    assert np.abs(mixed - expect).max() <= rounding_bound(max(np.abs(a).max(), np.abs(b).max()), 3)
    assert np.linalg.norm(mixed) < 0.9                    # a mean of two unit vectors is shorter
    assert np.array_equal(backend.blend(vectors[:1], np.ones(1, np.float32)), a)
    assert np.array_equal(backend.blend(vectors, np.array([2.0, 0.0, 0.0], np.float32)), a)


def test_seeds_reproduce_and_conditioning_reaches_the_model(backend):
    backend.reset(seed=11)
    a = backend.generate(cond(backend), 6)
    backend.reset(seed=11)
    assert np.array_equal(backend.generate(cond(backend), 6), a)
    backend.reset(seed=12)
    assert not np.array_equal(backend.generate(cond(backend), 6), a)
    backend.reset(seed=11)
    other = Conditioning(style=backend.embed_text("bright marimba"), notes=np.full(128, 2, np.int8), drums=1)
    assert not np.array_equal(backend.generate(other, 6), a)


def test_a_state_map_renders_through_the_engine(backend, write_map):
    path = write_map("""
version: 1
backend: {prefer: mrt2, fallback: synth}
styles:
  calm: {prompt: "soft piano", weight: 1}
  fight: {prompt: "driving drums"}
params:
  danger: {min: 0, max: 1, default: 0}
rules:
  - when: "danger > 0.5"
    blend: {fight: 1}
    drums: on
""")
    engine = Engine(backend, make_director(load(path), backend, 0))
    conds = []
    pcm = engine.render(1.0, on_frame=lambda k, frame: conds.append(frame.cond))
    assert pcm.shape == (48_000, 2) and np.abs(pcm[1920:]).max() > 0
    # where the map sets no `generation:`, the official C++ runtime's defaults apply
    assert {k: getattr(conds[-1], k) for k in ENGINE} == dict(ENGINE)


def test_without_weights_the_map_falls_back_to_synth(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(tmp_path / "empty"))
    with caplog.at_level(logging.WARNING):
        gen = choose_backend("mrt2", "synth")
    assert gen.name == "synth"
    assert "scorewright models download small" in caplog.text and "mrt2_small.safetensors" in caplog.text


def test_models_cli_verifies_the_checkpoint(models_root, monkeypatch, capsys, tmp_path):
    from scorewright.cli import console
    monkeypatch.setattr(console, "width", 300)
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(models_root))
    assert main(["models", "verify", "small"]) == 1          # MusicCoCa files are not here
    err = capsys.readouterr().err
    assert "missing" in err and "text_encoder.tflite" in err
    assert "holds the mrt2_tiny model, not mrt2_small" in err  # and the checkpoint is a tiny test one
    (tmp_path / "checkpoints").mkdir()
    models.checkpoint_path("small", tmp_path).write_bytes(b"garbage")
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(tmp_path))
    assert main(["models", "verify", "small"]) == 1
    assert "not a readable safetensors file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def root_with_encoder(models_root, tmp_path_factory):
    from safetensors.numpy import save_file
    root = tmp_path_factory.mktemp("with_encoder")
    (root / "checkpoints").mkdir(parents=True)
    shutil.copy(models.checkpoint_path("small", models_root), models.checkpoint_path("small", root))
    enc = randomise(SpectroStreamEncoder(CODEC), std=0.2)
    models.encoder_path(root).parent.mkdir(parents=True)
    save_file(official_state(enc), str(models.encoder_path(root)))
    return root


def test_streams_start_from_the_start_state_unless_the_silence_prefill_is_asked(root_with_encoder):
    b = MRT2Backend(size="small", models_root=root_with_encoder, style_model=HashStyle(), seed=3)
    assert b.silence is None and int(b.sampler.state["step"]) == 0 and not b.sampler.state["prev"].any()
    assert np.abs(b.generate(cond(b), 1)).max() == 0             # the codec's lookahead: silent 40 ms
    n = 9
    b = MRT2Backend(size="small", models_root=root_with_encoder, style_model=HashStyle(), seed=3,
                    prefill_frames=n)
    assert b.silence is not None and b.silence.shape == (12,)
    # n - 1 silent frames in the caches, the last one left as the previous frame, n - 1 decoded
    assert int(b.sampler.state["step"]) == n - 1 and b.decoder.frames_seen == n - 1
    assert torch.equal(b.sampler.state["prev"][0] - b.model.level_offsets, b.silence)
    first = b.sampler.save()
    out = b.generate(cond(b, **ENGINE), 3)
    assert np.abs(out[:1920]).max() > 0          # the codec was primed too: no silent first frame
    b.reset(seed=3)                              # lands on the kept post-prefill state at once
    assert len(b._starts) == 1 and np.array_equal(b.generate(cond(b, **ENGINE), 3), out)
    b.generate(cond(b, **{**ENGINE, "cfg_style": 1.6}, drums=0), 1)
    b.reset(seed=3)                              # other scales and drumless: prefilled under them
    assert len(b._starts) == 2 and not torch.equal(b.sampler.state["cross_k"], first["cross_k"])


def test_backend_options_from_the_environment(root_with_encoder, monkeypatch, caplog):
    from scorewright.backends.mrt2 import create
    from scorewright.backends.mrt2.start import PREFILL_FRAMES
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(root_with_encoder))
    monkeypatch.setattr("scorewright.backends.mrt2.backend.MusicCoCa", lambda folder: HashStyle())
    monkeypatch.setattr(models, "require", lambda size, base: None)
    monkeypatch.setenv("SCOREWRIGHT_MRT2_ONSETS", "unmask")
    monkeypatch.setenv("SCOREWRIGHT_MRT2_PREFILL", "silence")
    b = create(seed=1)
    assert b.onsets == "unmask" and b.prefill_frames == PREFILL_FRAMES == 550
    assert int(b.sampler.state["step"]) == 549
    monkeypatch.setenv("SCOREWRIGHT_MRT2_ONSETS", "sometimes")
    with caplog.at_level(logging.WARNING):
        assert choose_backend("mrt2", "synth").name == "synth"
    assert "SCOREWRIGHT_MRT2_ONSETS='sometimes'; expected one of mask, unmask" in caplog.text


def test_notes_go_in_as_the_onset_mode_says(backend):
    notes = np.full(128, -1, np.int8)
    notes[60], notes[64] = 2, 1
    ids = []
    def step(cond, params):
        ids.append(cond[0].clone())
        return torch.zeros(1, 12, dtype=torch.long)

    backend.sampler.step = step
    backend.generate(cond(backend, notes=notes), 1)
    backend.onsets = "unmask"
    backend.generate(cond(backend, notes=notes), 1)
    assert (int(ids[0][12 + 60]), int(ids[0][12 + 64])) == (10, 10)
    assert (int(ids[1][12 + 60]), int(ids[1][12 + 64])) == (9, 8)


def test_models_download_fetches_the_official_files_into_the_layout(tmp_path, monkeypatch):
    """No network here: huggingface_hub's listing and downloader are replaced by ones that serve a
    made-up listing of the repo and record what is asked."""
    hub = pytest.importorskip("huggingface_hub")
    listing = ["README.md", "checkpoints/mrt2_small.safetensors", "checkpoints/mrt2_base.safetensors",
               "models/mrt2_base/mrt2_base.mlxfn"]
    listing += [f"resources/musiccoca/{f}" for f in (*models.MUSICCOCA_FILES, models.MAPPER)]
    listing += [f"resources/spectrostream/{f}" for f in ("encoder.safetensors", "decoder.safetensors",
                                                         "spectrostream_encoder.mlxfn")]
    asked = []

    def fake_download(repo_id, filename, local_dir):
        asked.append((repo_id, filename))
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        return str(path)

    monkeypatch.setattr(hub.HfApi, "list_repo_files", lambda self, repo_id: listing)
    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(tmp_path))
    assert main(["models", "download", "base"]) == 0
    assert {r for r, _ in asked} == {"google/magenta-realtime-2"}
    # what `mrt models init` fetches (every file of the two resource folders) + the checkpoint
    assert sorted(f for _, f in asked) == sorted(n for n in listing if n.startswith("resources/")
                                                 or n == "checkpoints/mrt2_base.safetensors")
    assert all(s.present for s in models.status("base", tmp_path))   # where the loader looks
    listing.remove("resources/musiccoca/spm.model")
    monkeypatch.setenv("SCOREWRIGHT_MODELS", str(tmp_path / "again"))
    assert main(["models", "download", "small"]) == 2                 # the hub lacks a file we need


@pytest.mark.parametrize("prefill", [0, 2])
def test_a_failing_compile_leaves_the_eager_step(root_with_encoder, monkeypatch, caplog, prefill):
    """SCOREWRIGHT_MRT2_COMPILE=1 on a machine where inductor cannot build (no C++ compiler): the
    backend warns, says why, and plays the eager step, the same frames as without compiling (also
    when the silence prefill, which runs the step at start, is on)."""
    def no_compiler(fn, **kw):
        def call(*args, **kwargs):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return call
    kw = dict(size="small", models_root=root_with_encoder, style_model=HashStyle(), seed=3,
              prefill_frames=prefill)
    want = MRT2Backend(**kw)
    monkeypatch.setattr(torch, "compile", no_compiler)
    with caplog.at_level(logging.INFO):
        b = MRT2Backend(**kw, compile=True)
    assert "torch.compile failed, running the eager step instead: InvalidCxxCompiler: No working C++ " \
           "compiler found" in caplog.text and "more detail" not in caplog.text
    assert np.array_equal(b.generate(cond(b, **ENGINE), 3), want.generate(cond(want, **ENGINE), 3))


def test_int4_off_the_cpu_is_refused_before_loading(models_root):
    with pytest.raises(ValueError, match="quant int4 runs on the CPU only .* not on meta: use int8 or off"):
        MRT2Backend(size="small", models_root=models_root, style_model=HashStyle(), device="meta",
                    quant="int4")
