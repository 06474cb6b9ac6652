import logging
import time

import numpy as np

from scorewright import stream as stream_module
from scorewright.audio import FRAME_SAMPLES
from scorewright.engine import Engine, fade_out
from scorewright.protocol import check
from scorewright.statemap.director import Director
from scorewright.statemap.load import load
from scorewright.stream import PacedStream

from .fakes import ToneBackend
from .test_director import MAP


def make_engine(write_map, **kw):
    smap = load(write_map(MAP))
    return Engine(ToneBackend(**kw), Director(smap, ToneBackend()))


def run_stream(engine, seconds, lookahead=3):
    got = []
    stream = PacedStream(engine, [lambda k, frame: got.append((k, frame.pcm))], lookahead)
    stream.start()
    time.sleep(seconds)
    stream.stop()
    return stream, got


def test_paced_stream_is_continuous_and_real_time(write_map):
    stream, got = run_stream(make_engine(write_map), 1.5)
    assert stream.stats.underruns == 0
    ks = [k for k, _ in got]
    assert ks == list(range(len(ks)))
    assert 30 <= len(ks) <= 45            # ~25 frames/s (+ lookahead)


def test_slow_frame_underruns_with_a_fade_and_stream_goes_on(write_map):
    engine = make_engine(write_map, slow_frames={10}, slow_s=0.25)
    stream, got = run_stream(engine, 1.5)
    assert stream.stats.underruns >= 1
    ks = [k for k, _ in got]
    assert ks == list(range(len(ks)))     # output never stopped nor skipped a slot
    fills = [pcm for k, pcm in got if k > 3 and not pcm[-1].any()]
    assert fills and np.abs(fills[0]).max() > 0.1   # a fade-out, not an abrupt cut to silence
    assert max(float(np.abs(pcm).max()) for _, pcm in got[-5:]) > 0.2   # and the music came back


def test_backend_exception_is_contained(write_map):
    stream, got = run_stream(make_engine(write_map, fail_frames={5}), 1.0)
    assert stream.stats.backend_errors == 1
    assert len(got) > 20


def test_fade_out_is_continuous_with_the_last_frame():
    last = np.random.default_rng(0).uniform(-1, 1, (FRAME_SAMPLES, 2)).astype(np.float32)
    fill = fade_out(last)
    assert np.array_equal(fill[0], last[-1])
    assert not fill[-1].any()


def test_messages_apply_from_the_next_frame(write_map):
    engine = make_engine(write_map)
    for _ in range(3):
        engine.step()
    reply = engine.handle(check({"type": "state", "group": "area", "value": "cave"}))
    assert reply["frame"] == 3
    assert engine.director.states["area"] == "cave"


def test_pause_fades_then_silence_and_resume(write_map):
    engine = make_engine(write_map)
    engine.step()
    engine.handle(check({"type": "transport", "cmd": "pause"}))
    a = engine.step().pcm
    b = engine.step().pcm
    assert np.abs(a).max() > 0 and not b.any()
    engine.handle(check({"type": "transport", "cmd": "play"}))
    c = engine.step().pcm
    assert np.abs(c[:10]).max() < np.abs(c[-200:]).max()     # fades back in


def test_replaced_director_takes_over_at_the_bar(write_map):
    engine = make_engine(write_map)           # MAP: 120 bpm, a bar = 50 frames
    for _ in range(10):
        engine.step()
    engine.handle(check({"type": "state", "group": "area", "value": "cave"}))
    new = Director(load(write_map(MAP.replace('calm: {prompt: "calm", weight: 1}',
                                              'calm: {prompt: "calm", weight: 1}\n  extra: {prompt: "x"}'),
                                  "edited.yaml")), engine.backend)
    engine.replace_director(new)
    switched = None
    for k in range(10, 60):
        engine.step()
        if engine.director is new and switched is None:
            switched = k
    assert switched == 50                     # beat 4.0 lies in frame 50
    assert new.frame == 60 and new.states["area"] == "cave"   # clock and game state carried over


def test_a_backend_too_slow_for_real_time_is_named_once_and_underruns_do_not_flood_the_log(
        write_map, monkeypatch, caplog):
    monkeypatch.setattr(stream_module, "SLOW_CHECK_FRAMES", 8)
    engine = make_engine(write_map, slow_frames=set(range(1000)), slow_s=0.07)
    with caplog.at_level(logging.WARNING, logger="scorewright.stream"):
        stream, got = run_stream(engine, 2.5)
    slow = [r.getMessage() for r in caplog.records if "cannot play it in real time" in r.getMessage()]
    assert len(slow) == 1 and "the tone backend takes 7" in slow[0] and "scorewright render" in slow[0]
    told = [r for r in caplog.records if r.getMessage().startswith("underrun at frame")]
    summaries = [r for r in caplog.records if "more underruns in the last second" in r.getMessage()]
    assert 1 <= len(told) <= 4 < stream.stats.underruns       # at most one a second, the rest counted
    assert summaries
    assert [k for k, _ in got] == list(range(len(got)))       # and the output never missed a slot


def test_a_backend_that_keeps_up_is_not_called_slow(write_map, monkeypatch, caplog):
    monkeypatch.setattr(stream_module, "SLOW_CHECK_FRAMES", 8)
    with caplog.at_level(logging.WARNING, logger="scorewright.stream"):
        run_stream(make_engine(write_map), 1.0)
    assert "cannot play it in real time" not in caplog.text
