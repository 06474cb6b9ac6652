"""Synth backend frame cost: ms per 40 ms frame (p50/p99), over every preset and blends.

    python bench/bench_synth.py [--seconds-per-style 10]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace

import numpy as np

from scorewright.backends.synth.backend import SynthBackend
from scorewright.backends.synth.presets import PRESETS
from scorewright.conditioning import Conditioning, unit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds-per-style", type=float, default=10.0)
    args = ap.parse_args()
    synth = SynthBackend()
    styles = [synth.embed_text(p.description) for p in PRESETS]
    styles += [unit(a + b) for a, b in zip(styles, styles[1:] + styles[:1], strict=True)]  # blends
    frames = int(args.seconds_per_style * 25)
    costs, beat = [], 0.0
    synth.reset(0)
    for i, style in enumerate(styles):
        tempo = synth.preferred_tempo(style)
        cond = Conditioning(style=style, tempo_bpm=tempo, drums=1 if i % 2 else -1)
        for _ in range(frames):
            t = time.perf_counter()
            synth.generate(replace(cond, beat=beat))
            costs.append((time.perf_counter() - t) * 1000)
            beat += tempo / 60 * 0.04
    c = np.array(costs)
    print(json.dumps({
        "bench": "synth_frame_cost", "frames": len(c), "styles": len(styles),
        "p50_ms": round(float(np.percentile(c, 50)), 3), "p99_ms": round(float(np.percentile(c, 99)), 3),
        "max_ms": round(float(c.max()), 3), "frame_ms": 40.0,
        "headroom_at_p99": round(40.0 / float(np.percentile(c, 99)), 1),
        "bar_p99_ms": 4.0, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }))


if __name__ == "__main__":
    main()
