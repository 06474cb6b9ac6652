
import numpy as np
import pytest

from scorewright.conditioning import NOTE_FREE, NOTE_HELD, NOTE_OFF, NOTE_ONSET
from scorewright.statemap.director import Director, InputError
from scorewright.statemap.load import load

from .fakes import ToneBackend

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


@pytest.fixture
def director(write_map):
    return Director(load(write_map(MAP)), ToneBackend())


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
    assert conds[12 - 5].change_beat == 1.0            # ... from that beat inside the frame
    assert weights[61 - 5] == {"stinger_died": 1.0}   # one bar: beats 1.0 to 5.0
    assert weights[62 - 5] == {"calm": 1.0}           # then resumes from beat 5.0 (frame 62)
    assert conds[62 - 5].change_beat == 5.0
    assert conds[63 - 5].change_beat is None


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
        d = Director(smap, ToneBackend())
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


MAP2 = """version: 1
tempo: 120
styles:
  calm: {prompt: "calm", weight: 1}
  fight: {prompt: "fight"}
  bridge: {prompt: "bridge"}
params:
  noise: {min: 0, max: 1}
  slow: {min: 0, max: 1, attack_ms: 100, release_ms: 1000}
  slewed: {min: 0, max: 10, slew: 5}
  shaped: {min: 0, max: 1, curve: [[0, 0], [0.5, 0.1], [1, 1]]}
states:
  area: [a, b]
rules:
  - name: threshold
    when: noise > 0.6
    exit_when: noise < 0.4
    blend: {fight: 1}
    transition: {at: immediate, fade_ms: 0}
  - name: held
    when: noise > 0.5
    hold_ms: 1000
    drums: on
    transition: {at: immediate, fade_ms: 0}
  - name: later
    when: area == 'b'
    priority: 3
    blend: {calm: 1}
    transition: {at: bar, bars: 2, fade_ms: 0, bridge: {style: bridge, bars: 1}}
stingers:
  hit: {style: fight, beats: 2, at: beat, fade_ms: 0, cooldown_ms: 1000, then: {state: {area: b}}}
"""


@pytest.fixture
def director2(write_map):
    return Director(load(write_map(MAP2)), ToneBackend())


def test_hysteresis_and_hold_stop_flapping(director2):
    rng = np.random.default_rng(0)
    noisy = 0.6 + rng.normal(0, 0.06, 300)          # a param hovering at the threshold
    threshold_changes = held_changes = 0
    last_fight = last_drums = None
    for v in noisy:
        director2.set_param("noise", float(np.clip(v, 0, 1)))
        c = director2.step()
        fight = "fight" in c.weights
        threshold_changes += last_fight is not None and fight != last_fight
        held_changes += last_drums is not None and c.drums != last_drums
        last_fight, last_drums = fight, c.drums
    naive = int(np.sum(np.diff((noisy > 0.6).astype(int)) != 0))
    assert naive > 15                       # the raw signal crosses the threshold a lot
    assert threshold_changes <= 2           # exit_when 0.4: once on, it stays on
    assert held_changes <= 300 * 0.04 / 1.0 + 1   # hold_ms 1000: at most one change per second


def test_n_bar_transition_with_bridge(director2):
    run(director2, 10)
    director2.set_state("area", "b")        # bars: 2 -> lands on the 2nd bar line: beat 8 = frame 100
    conds = {10 + i: c for i, c in enumerate(run(director2, 160))}
    assert conds[99].weights == {"calm": 1.0}
    assert conds[100].weights == {"bridge": 1.0}      # a bridge bar first...
    assert conds[149].weights == {"bridge": 1.0}
    assert conds[150].weights == {"calm": 1.0}        # ...then the rule's blend


def test_markers_are_sample_accurate(director2):
    run(director2, 10)
    director2.set_state("area", "b")
    found = []
    for _ in range(100):
        frame = director2.frame
        director2.step()
        found += [(frame, m) for m in director2.markers]
    transitions = [(f, m) for f, m in found if m.kind == "transition"]
    assert [(f, m.offset, m.name) for f, m in transitions] == [(100, 0, "later:on")]
    beats = [(f, m) for f, m in found if m.kind == "beat"]
    assert [m.beat for _, m in beats] == pytest.approx(list(range(1, 9)))
    for f, m in beats:   # 120 bpm: beat b is at sample 24000 * b of the stream
        assert abs(f * 1920 + m.offset - 24000 * m.beat) <= 1
    assert [m.bar for f, m in found if m.kind == "bar"] == [1, 2]


def test_param_attack_release_slew_and_curve(director2):
    d = director2
    d.set_param("slow", 1.0)
    run(d, 10)                               # 400 ms with a 100 ms attack: nearly there
    assert d.params["slow"] > 0.95
    d.set_param("slow", 0.0)
    run(d, 10)                               # 400 ms with a 1000 ms release: still high
    assert 0.55 < d.params["slow"] < 0.75
    d.set_param("slewed", 10)
    run(d, 25)                               # 5 units/s for 1 s
    assert d.params["slewed"] == pytest.approx(5.0, abs=0.01)
    d.set_param("shaped", 0.5)
    d.step()
    assert d.params["shaped"] == pytest.approx(0.1)


def test_stinger_cooldown_then_state_and_pending_events(director2):
    d = director2
    run(d, 5)
    assert d.trigger("hit") is True
    assert d.trigger("hit") is False         # within cooldown_ms
    d.set_state("area", "a")                 # an event during the pending stinger: same order,
    conds = run(d, 60)                       # same result every time
    assert any(c.weights == {"fight": 1.0} for c in conds)
    assert d.states["area"] == "b"           # then: {state: {area: b}}
    assert d.stats.ignored_stingers == 1


def test_motif_follows_the_key(write_map):
    text = MAP.replace("events: [spotted]", "events: [spotted]\n").replace(
        "  - name: stealth\n", "  - name: tune\n    when: danger > 0.1\n    notes: [C4]\n"
        "    transition: {at: immediate, fade_ms: 0}\n  - name: stealth\n")
    smap = load(write_map(text))
    for key, expected in (((2, "major"), 62), ((9, "minor"), 57), (None, 60)):
        d = Director(smap, ToneBackend(key=key))
        d.set_param("danger", 0.5)
        c = d.step()
        assert int(np.flatnonzero(c.notes == NOTE_ONSET)[0]) == expected


def test_backend_registry_is_what_maps_and_the_cli_offer():
    """One registry of backend names: the schema's enums and --backend choices follow it."""
    import json

    from scorewright.backends.base import REGISTRY
    from scorewright.cli import build_parser

    from .conftest import MAPS
    spec = json.loads((MAPS / "schema.json").read_text())["properties"]["backend"]["anyOf"]
    assert spec[0]["enum"] == list(REGISTRY)
    assert all(spec[1]["properties"][k]["enum"] == list(REGISTRY) for k in ("prefer", "fallback"))
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("serve", "render", "demo"):
        backend = next(a for a in commands[name]._actions if a.dest == "backend")
        assert list(backend.choices) == list(REGISTRY)


def test_generation_presets_and_overrides(write_map):
    """`generation: {preset: ...}` starts from an official MRT2 profile; values written beside it
    and a landed rule's settings override it; the backend's defaults fill what the map leaves."""
    from scorewright.backends.mrt2.profiles import APPS, ENGINE
    from scorewright.statemap.model import Generation

    text = MAP.replace("tempo: 120", "tempo: 120\ngeneration: {preset: apps, temperature: 0.9}")
    text = text.replace("    drums: on\n", "    drums: on\n    generation: {preset: engine}\n", 1)
    smap = load(write_map(text))
    assert smap.generation == Generation(**{**APPS, "temperature": 0.9}, preset="apps")
    backend = ToneBackend()
    backend.generation_defaults = {"temperature": 2.0, "top_k": 7}
    d = Director(smap, backend)
    fields = ("temperature", "top_k", "cfg_style", "cfg_notes", "cfg_drums")
    c = d.step()
    assert {k: getattr(c, k) for k in fields} == {**APPS, "temperature": 0.9}
    d.set_param("danger", 1.0)
    c = run(d, 60)[-1]                   # the combat rule lands on the next bar
    assert {k: getattr(c, k) for k in fields} == dict(ENGINE)
    bare = Director(load(write_map(MAP)), backend)
    assert (bare.step().temperature, bare.step().top_k) == (2.0, 7)


def test_generation_preset_names_are_the_schema_enum():
    import json

    from scorewright.backends.mrt2.profiles import PRESETS

    from .conftest import MAPS
    spec = json.loads((MAPS / "schema.json").read_text())["$defs"]["generation"]["properties"]["preset"]
    assert spec["enum"] == list(PRESETS)
