"""Landing -> heard, per kind of change (issue 17), with the synth backend, offline.

    python bench/bench_landing.py [--events 30] [--seed 0]

For each of `--events` random draws (tempo 72-173 bpm, 3/4 or 4/4, event time, music seed) it
renders tests/fixtures/landing.yaml twice per kind of tests/fixtures/landing_kinds.yaml, with and
without the change, and measures from the change's landing sample (its marker, beats or bars
past it, or the frame a game note applies to) to the first differing sample and to where the difference
is heard (the end of the first 20 ms whose RMS reaches a quarter of the music's level).
Prints one JSON line: p50/p95 in ms per kind, and how many were never heard in the render.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from scorewright.audio import FRAME_SAMPLES, SAMPLE_RATE
from scorewright.backends.synth.backend import SynthBackend
from scorewright.engine import ScriptItem, frame_of
from scorewright.heard import audible, first_difference, level, render
from scorewright.protocol import check
from scorewright.statemap.load import load
from scorewright.statemap.model import StateMap

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def landing(kind: str, spec: dict, marks, t: float, tempo: float, bpb: int) -> int:
    """The change's landing sample in the render that has it."""
    if kind == "game_note":
        return frame_of(t) * FRAME_SAMPLES
    want = "transition" if spec["message"]["type"] == "set" else "stinger"
    mark = next(m for m in marks if m.kind == want)
    if not {"after_landing_beats", "after_landing_bars"} & set(spec):
        return mark.pos
    after = spec.get("after_landing_beats", 0) + spec.get("after_landing_bars", 0) * bpb
    return round((mark.beat + after) * 60 * SAMPLE_RATE / tempo)


def percentiles(ms: list[float]) -> dict[str, float | None]:
    if not ms:
        return {"p50": None, "p95": None}
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}


def draw(synth: SynthBackend, smap: StateMap, kinds: dict, t: float, seed: int
         ) -> dict[str, tuple[float | None, float | None]]:
    """One random event of every kind: kind -> (landing -> first difference, landing -> heard),
    in ms (None: none in the render)."""
    seconds = t + (2 * smap.beats_per_bar + 2) * 60 / smap.tempo + 1.0
    renders: dict[str, tuple] = {}

    def rendered(message: dict | None) -> tuple:
        key = json.dumps(message)
        if key not in renders:
            script = [] if message is None else [ScriptItem(t, check(dict(message)))]
            renders[key] = render(smap, synth, seconds, script, seed=seed)
        return renders[key]
    out = {}
    for kind, spec in kinds.items():
        (a, marks), (b, _) = rendered(spec["message"]), rendered(spec.get("against"))
        land = landing(kind, spec, marks, t, smap.tempo, smap.beats_per_bar)
        first = first_difference(a, b)
        heard = None if first is None else audible(a, b, first, level(b, SAMPLE_RATE // 2, land))
        out[kind] = tuple(None if x is None else (x - land) / SAMPLE_RATE * 1000 for x in (first, heard))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=30, help="random events per kind")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draws")
    ap.add_argument("--label", default=None, help="what code was measured (added to the line)")
    args = ap.parse_args()
    kinds = yaml.safe_load((FIXTURES / "landing_kinds.yaml").read_text())
    base_map = load(FIXTURES / "landing.yaml")
    synth, rng = SynthBackend(), random.Random(args.seed)
    firsts: dict[str, list[float]] = {k: [] for k in kinds}
    heards: dict[str, list[float]] = {k: [] for k in kinds}
    started = time.perf_counter()
    for _ in range(args.events):
        smap = replace(base_map, tempo=rng.uniform(72, 173), beats_per_bar=rng.choice((3, 4)))
        t, seed = rng.uniform(1.0, 3.0), rng.randrange(1 << 16)
        for kind, (first, heard) in draw(synth, smap, kinds, t, seed).items():
            if first is not None:
                firsts[kind].append(first)
            if heard is not None:
                heards[kind].append(heard)
    result = {k: {"first_ms": percentiles(firsts[k]), "heard_ms": percentiles(heards[k]),
                  "never_heard": args.events - len(heards[k])} for k in kinds}
    label = {} if args.label is None else {"code": args.label}
    print(json.dumps({"bench": "landing_to_heard", **label, "backend": "synth",
                      "events_per_kind": args.events, "tempo_bpm": [72, 173], "beats_per_bar": [3, 4],
                      "heard_share": 0.25, "window_ms": 20, "kinds": result,
                      "wall_s": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
