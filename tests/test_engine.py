import time

import numpy as np

from scorewright.audio import FRAME_SAMPLES
from scorewright.conditioning import Conditioning
from scorewright.engine import Engine, PacedStream, fade_out
from scorewright.protocol import check
from scorewright.statemap.director import Director
from scorewright.statemap.load import load

from .test_director import MAP, fake_embed


class ToneBackend:
    """A test backend: a steady tone; can be made slow or faulty on chosen frames."""

    name, sample_rate, channels, frame_samples = "tone", 48000, 2, FRAME_SAMPLES

    def __init__(self, slow_frames=(), slow_s=0.0, fail_frames=()):
        self.n, self.slow_s = 0, slow_s
        self.slow_frames, self.fail_frames = set(slow_frames), set(fail_frames)

    def embed_text(self, text):
        return fake_embed(text)

    def embed_audio(self, pcm, sr):
        return fake_embed("audio")

    def reset(self, seed=None):
        self.n = 0

    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        k, self.n = self.n, self.n + 1
        if k in self.fail_frames:
            raise RuntimeError("boom")
        if k in self.slow_frames:
            time.sleep(self.slow_s)
        t = (np.arange(FRAME_SAMPLES) + k * FRAME_SAMPLES) / 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        return np.stack([tone, tone], axis=1)


def make_engine(write_map, **kw):
    smap = load(write_map(MAP))
    return Engine(ToneBackend(**kw), Director(smap, fake_embed))


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
                                  "edited.yaml")), fake_embed)
    engine.replace_director(new)
    switched = None
    for k in range(10, 60):
        engine.step()
        if engine.director is new and switched is None:
            switched = k
    assert switched == 50                     # beat 4.0 lies in frame 50
    assert new.frame == 60 and new.states["area"] == "cave"   # clock and game state carried over
