import json
from dataclasses import replace

import numpy as np
import pytest

from scorewright.audio import FRAME_SAMPLES
from scorewright.backends.synth import analysis
from scorewright.backends.synth.embedder import DIM, TextEmbedder
from scorewright.backends.synth.presets import PRESETS
from scorewright.conditioning import NOTE_HELD, Conditioning, free_notes

from .conftest import ROOT
from .tolerance import rounding_bound, unit_norm_bound


def render(backend, style, seconds=6.0, seed=1, **kw) -> np.ndarray:
    tempo = kw.pop("tempo_bpm", backend.preferred_tempo(style))
    backend.reset(seed)
    cond = Conditioning(style=style, tempo_bpm=tempo, seed=seed, **kw)
    frames, beat = [], 0.0
    for _ in range(int(seconds * 25)):
        frames.append(backend.generate(replace(cond, beat=beat)))
        beat += tempo / 60 * 0.04
    return np.concatenate(frames)


def test_embedder_matches_sentence_transformers():
    ref = json.loads((ROOT / "tests/fixtures/minilm_reference.json").read_text())
    emb = TextEmbedder()
    ffn = emb._w["encoder.layer.0.intermediate.dense.weight"].shape[0]
    for text, vec in ref.items():
        tokens = len(emb._tok.encode(text).ids)
        # per layer: q, scores (head dim), softmax and context (tokens), out, norm, FFN in and
        # out, norm; then mean pooling and the final norm (tests/tolerance.py); unit-length output
        per_layer = DIM + DIM // 12 + 2 * tokens + 3 * DIM + ffn + DIM
        depth = 6 * per_layer + tokens + DIM
        want = np.array(vec, np.float32)
        np.testing.assert_allclose(emb.embed(text), want, atol=rounding_bound(1.0, depth))


def test_each_preset_owns_its_description(synth):
    for i, p in enumerate(PRESETS):
        w = synth.preset_weights(synth.embed_text(p.description))
        assert int(np.argmax(w)) == i, p.name


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_renders_music(synth, preset):
    pcm = render(synth, synth.embed_text(preset.description), seconds=4)
    assert pcm.shape == (100 * FRAME_SAMPLES, 2) and pcm.dtype == np.float32
    assert analysis.rms(pcm[48000:]) > 0.01                  # not silent
    assert np.abs(pcm).max() < 1.0                           # never clips
    assert np.mean(np.abs(pcm) > 0.99) == 0


def test_held_note_is_heard_at_its_pitch(synth):
    style = synth.embed_text("sad solo cello, melancholy")     # no drums, sparse
    synth.reset(3)
    root = synth.key()[0]
    pitch = 72 + root                                          # the tonic: in key whatever the key
    notes = free_notes()
    notes[pitch] = NOTE_HELD
    tempo = synth.preferred_tempo(style)
    with_note = render(synth, style, seconds=3, seed=3, notes=notes)
    without = render(synth, style, seconds=3, seed=3)
    diff = with_note[24000:] - without[24000:]
    assert analysis.rms(diff) > 0.005
    assert analysis.peak_frequency(diff, fmin=200) == pytest.approx(analysis.midi_to_hz(pitch), rel=0.03)
    assert tempo > 0


def test_drums_switch(synth):
    style = synth.embed_text("synthwave retro 80s synths, neon night drive")
    on = render(synth, style, drums=1)
    off = render(synth, style, drums=0)
    assert analysis.high_band_share(on) > 10 * analysis.high_band_share(off)


def test_seed_repeats_and_varies(synth):
    style = synth.embed_text("medieval tavern, lute, flute")
    a, b, c = (render(synth, style, seconds=4, seed=s) for s in (5, 5, 6))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_temperature_varies_the_arrangement(synth):
    style = synth.embed_text("smoky jazz noir, saxophone")
    cold = render(synth, style, seconds=8, temperature=0.0)
    hot = render(synth, style, seconds=8, temperature=2.0)
    assert not np.array_equal(cold, hot)


def test_blend_of_prompts_blends_presets(synth):
    a = synth.embed_text("8-bit chiptune, retro video game")
    b = synth.embed_text("dark horror drones, eerie atmosphere")
    mix = synth.preset_weights((a + b) / np.linalg.norm(a + b))
    names = [PRESETS[i].name for i in np.argsort(-mix)[:2]]
    assert set(names) == {"chiptune", "horror_drones"}
    assert min(mix[np.argsort(-mix)[:2]]) > 0.2


def test_audio_prompt_places_clip_near_matching_preset(synth):
    fast = render(synth, synth.embed_text(PRESETS[2].description), seconds=6)   # chiptune
    slow = render(synth, synth.embed_text(PRESETS[3].description), seconds=6)   # horror
    ef, es = synth.embed_audio(fast, 48000), synth.embed_audio(slow, 48000)
    tempo_f, tempo_s = synth.preferred_tempo(ef), synth.preferred_tempo(es)
    assert tempo_f > tempo_s
    assert abs(np.linalg.norm(ef) - 1) <= unit_norm_bound(len(ef))
