"""Heard where it lands (issue 17): two offline renders, same seed, with and without a change;
the first sample where they differ is the change's landing sample and its marker's `pos` (a
tempo change: the first note after it; drums off: the first hit that no longer sounds), and the
difference reaches a quarter of the music's level within a frame where the change has no fade
(tests/fixtures/landing_kinds.yaml lists the kinds). Three tempos, 3/4 and 4/4. Markers and
replies add the backend's latency."""

from __future__ import annotations

import functools
import json
from dataclasses import replace

import msgpack
import numpy as np
import pytest
import yaml

from scorewright.audio import FRAME_SAMPLES, SAMPLE_RATE
from scorewright.backends.synth.arranger import STEPS_PER_BEAT
from scorewright.engine import Engine, ScriptItem, frame_of
from scorewright.heard import Mark, audible, first_difference, level, render
from scorewright.protocol import check, encode
from scorewright.server import ServeConfig, Server
from scorewright.statemap.director import Director
from scorewright.statemap.load import load
from scorewright.transport.base import Outgoing, Peer, Transport

from .conftest import ROOT
from .fakes import ToneBackend

MAP = ROOT / "tests" / "fixtures" / "landing.yaml"
SWING_MAX = 0.33             # the largest preset swing, in 16ths

KINDS = yaml.safe_load((ROOT / "tests" / "fixtures" / "landing_kinds.yaml").read_text())
METERS = [(72, 3), (120, 4), (173, 4), (72, 4), (173, 3)]


def sample_of(beat: float, tempo: float) -> int:
    return round(beat * 60 * SAMPLE_RATE / tempo)


@functools.lru_cache(maxsize=16)
def _render(synth, tempo: float, bpb: int, message: str | None, t: float) -> tuple[np.ndarray, list[Mark]]:
    smap = replace(load(MAP), tempo=tempo, beats_per_bar=bpb)
    script = [] if message is None else [ScriptItem(t, check(json.loads(message)))]
    seconds = 1.0 + 0.0173 * len(KINDS) + 2 * bpb * 60 / tempo + 0.5   # a bar landing and a bar
    return render(smap, synth, seconds, script, seed=5)


def case(synth, tempo: float, bpb: int, kind: str) -> tuple[float, np.ndarray, list[Mark], np.ndarray]:
    """(event time, render with the change, its markers, the render it is compared with)."""
    message, other = KINDS[kind]["message"], KINDS[kind].get("against")
    t = 1.0 + 0.0173 * list(KINDS).index(kind)             # off the frame and beat grids
    a, marks = _render(synth, tempo, bpb, json.dumps(message), t)
    b, _ = _render(synth, tempo, bpb, None, 0.0) if other is None else \
        _render(synth, tempo, bpb, json.dumps(other), t)
    return t, a, marks, b


def landing_mark(marks: list[Mark], kind: str) -> Mark:
    want = "stinger" if kind.startswith("stinger") or kind == "motif_note" else "transition"
    return next(m for m in marks if m.kind == want)


@pytest.mark.parametrize("tempo,bpb", METERS, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", list(KINDS))
def test_heard_from_the_landing_sample(synth, kind, tempo, bpb):
    t, a, marks, b = case(synth, tempo, bpb, kind)
    first = first_difference(a, b)
    assert first is not None
    spec = KINDS[kind]                                       # a beat past the landing: no marker
    after = None if not {"after_landing_beats", "after_landing_bars"} & set(spec) else \
        spec.get("after_landing_beats", 0) + spec.get("after_landing_bars", 0) * bpb
    if kind == "game_note":                                  # from its reply's frame
        landing = frame_of(t) * FRAME_SAMPLES
    else:
        mark = landing_mark(marks, kind)
        assert abs(mark.pos - sample_of(mark.beat, tempo)) <= 1     # the clock's frames vs closed form
        landing = mark.pos if after is None else sample_of(mark.beat + after, tempo)
    if kind == "tempo":
        # the notes on the landing beat keep their place; the first one after it moves
        assert landing < first <= landing + sample_of((1 + SWING_MAX) / 4, tempo) + FRAME_SAMPLES
        return
    if kind == "drums_off":
        # no drum hit from the landing on: the first one missing is on a 16th step (the bed's
        # preset does not swing) at or after the landing, within a bar
        step = round(first * tempo / 60 / SAMPLE_RATE * STEPS_PER_BEAT)
        assert abs(first - sample_of(step / STEPS_PER_BEAT, tempo)) <= 1
        assert landing <= first < landing + sample_of(bpb, tempo)
    else:
        assert first == landing if after is None else abs(first - landing) <= 1
    heard = audible(a, b, first, level(b, SAMPLE_RATE // 2, first))
    assert heard is not None
    if KINDS[kind]["at_once"]:
        assert heard - first <= FRAME_SAMPLES
    else:                                                   # before its 1000 ms fade is over
        assert heard - first < SAMPLE_RATE


class LateTone(ToneBackend):
    """A tone that is heard 80 ms after its stream position (as mrt2 declares)."""

    latency_samples = 2 * FRAME_SAMPLES


class Capture(Transport):
    name = "capture"

    def __init__(self) -> None:
        self.published: list[Outgoing] = []

    def start(self, inbox) -> None: ...
    def stop(self) -> None: ...
    def push(self, payload: bytes) -> None: ...

    def publish(self, out: Outgoing) -> None:
        self.published.append(out)


class Client(Peer):
    def reply(self, payload: bytes) -> None: ...


def test_markers_and_replies_point_past_the_backend_latency():
    backend = LateTone()
    engine = Engine(backend, Director(load(MAP), backend))
    capture = Capture()
    server = Server(engine, ServeConfig(watch=False), transports=[capture])
    reply = server.dispatcher.handle(Client(), encode({"type": "event", "name": "hit"}))
    assert reply["pos"] == reply["frame"] * FRAME_SAMPLES + backend.latency_samples
    expected_due = server.stream.due_unix(reply["frame"]) + backend.latency_samples / SAMPLE_RATE
    assert abs(reply["due"] - expected_due) < 0.01        # two clock readings apart
    marks = []
    for k in range(40):
        frame = engine.step()
        server._publish(k, frame)
        out = capture.published[-1]
        for m, raw in zip(frame.markers, out.markers, strict=True):
            msg = msgpack.unpackb(raw)
            assert msg["pos"] == k * FRAME_SAMPLES + m.offset + backend.latency_samples
            assert msg["due"] - out.header["due"] == pytest.approx(
                (m.offset + backend.latency_samples) / SAMPLE_RATE, abs=1e-6)
            marks.append(msg["kind"])
    assert "stinger" in marks and "beat" in marks
