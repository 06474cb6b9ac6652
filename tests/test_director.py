import hashlib

import numpy as np
import pytest

from scorewright.conditioning import NOTE_FREE, NOTE_HELD, NOTE_OFF, NOTE_ONSET
from scorewright.statemap.director import Director, InputError
from scorewright.statemap.load import load

MAP = """version: 1
tempo: 120          # 2 beats/s = 0.08 beats per frame: a 4-beat bar is exactly 50 frames
styles:
  calm: {prompt: "calm", weight: 1}
  fight: {prompt: "fight"}
  sneak: {prompt: "sneak"}
params:
  danger: {min: 0, max: 1}
  noise: {min: 0, max: 1, smooth_ms: 200}
states:
  area: [forest, cave]
events: [spotted]
rules:
  - name: combat
    when: danger > 0.5
    blend: {fight: 1}
    drums: on
    transition: {at: bar, fade_ms: 1000}
  - name: stealth
    when: area == 'cave'
    blend: {sneak: 1}
    transition: {at: beat, fade_ms: 0}
  - name: broken
    when: danger > 0.95
    blend: {sneak: "1 / (1 - danger)"}
    transition: {at: immediate, fade_ms: 0}
stingers:
  died: {prompt: "sad", bars: 1, at: beat, fade_ms: 0}
"""


def fake_embed(text: str) -> np.ndarray:
    rng = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))
    v = rng.normal(size=16)
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def director(write_map):
    return Director(load(write_map(MAP)), fake_embed)


def run(d: Director, n: int):
    return [d.step() for _ in range(n)]


def test_bar_transition_lands_on_the_bar_frame_and_fades(director):
    run(director, 10)
    director.set_param("danger", 0.9)
    conds = run(director, 70)             # frames 10..79
    frame = {10 + i: c for i, c in enumerate(conds)}
    assert "fight" not in frame[49].weights
    assert frame[50].weights["fight"] > 0  # bar 2 starts at beat 4.0 = frame 50
    assert frame[50].drums == 1 and frame[49].drums == -1
    # fade_ms 1000 = 25 frames from 0 to full
    assert frame[50 + 23].weights["fight"] < 0.99 < frame[50 + 25].weights["fight"]


def test_beat_transition_lands_on_the_next_beat(director):
    run(director, 3)
    director.set_state("area", "cave")
    conds = run(director, 20)
    first = next(3 + i for i, c in enumerate(conds) if "sneak" in c.weights)
    assert first == 12                     # beat 1.0 lies in frame 12 = [0.96, 1.04)


def test_immediate_lands_on_the_next_frame_and_runtime_errors_do_not_crash(director):
    run(director, 3)
    director.set_param("danger", 0.97)
    assert director.step().weights["sneak"] > 0.9
    director.set_param("danger", 1.0)      # 1 / (1 - 1): counted and logged, never raised
    conds = run(director, 60)
    assert director.stats.rule_errors > 0
    assert conds[-1].weights == {"fight": 1.0}


def test_param_smoothing(director):
    director.set_param("noise", 1.0)
    director.step()
    assert 0 < director.params["noise"] < 0.3
    run(director, 50)
    assert director.params["noise"] == pytest.approx(1.0, abs=1e-3)


def test_stinger_interrupts_and_resumes(director):
    run(director, 5)
    director.trigger("died")
    conds = run(director, 90)
    weights = [c.weights for c in conds]
    assert "stinger_died" not in weights[11 - 5]
    assert weights[12 - 5] == {"stinger_died": 1.0}   # lands on beat 1.0 (frame 12)
    assert weights[62 - 5] == {"stinger_died": 1.0}   # one bar: beats 1.0 to 5.0
    assert weights[64 - 5] == {"calm": 1.0}           # then resumes


def test_notes_onset_held_release(director):
    director.notes(on=[60])
    a, b = director.step(), director.step()
    director.notes(off=[60])
    c, d = director.step(), director.step()
    states = (a.notes[60], b.notes[60], c.notes[60], d.notes[60])
    assert states == (NOTE_ONSET, NOTE_HELD, NOTE_OFF, NOTE_FREE)


def test_bad_input_is_an_input_error(director):
    for call in (lambda: director.set_param("nope", 1), lambda: director.set_param("danger", float("nan")),
                 lambda: director.set_state("area", "moon"), lambda: director.trigger("launch"),
                 lambda: director.notes(on=[128])):
        with pytest.raises(InputError):
            call()


def test_same_inputs_same_conditioning(write_map):
    smap = load(write_map(MAP))

    def sequence():
        d = Director(smap, fake_embed)
        out = []
        for k in range(150):
            if k == 20:
                d.set_param("danger", 0.8)
            if k == 70:
                d.trigger("died")
            c = d.step()
            out.append((c.style.tobytes(), c.notes.tobytes(), c.drums, c.tempo_bpm, c.beat))
        return out
    assert sequence() == sequence()
