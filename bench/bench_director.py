"""Director evaluation cost for a 50-rule state map: ms per frame (p50/p99/mean).

    python bench/bench_director.py [--rules 50] [--frames 5000]

Styles are 384-d like the synth's; the preferred-tempo hook does the synth's preset softmax.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from scorewright.backends.base import Backend
from scorewright.statemap.director import Director
from scorewright.statemap.load import load

DIM, PRESETS = 384, 14


def make_map(n_rules: int) -> str:
    lines = ["version: 1", "tempo: auto", "styles:"]
    lines += [f"  s{i}: {{prompt: \"style {i}\", weight: {1 if i == 0 else 0}}}" for i in range(8)]
    lines += ["params:"] + [f"  p{i}: {{min: 0, max: 1, attack_ms: 200, release_ms: 900}}" for i in range(4)]
    lines += ["states:", "  area: [a, b, c, d]", "  mode: [calm, alert]", "rules:"]
    for r in range(n_rules):
        p, q = f"p{r % 4}", f"p{(r + 1) % 4}"
        when = [f"{p} > {0.1 + (r % 9) / 10:.1f}",
                f"area == '{'abcd'[r % 4]}' and {q} < 0.8",
                f"mode == 'alert' or {p} * {q} > 0.3",
                f"clamp({p} - {q}) > 0.2 and time_in('area') > 1"][r % 4]
        lines += [f"  - name: r{r}", f"    when: \"{when}\"", f"    priority: {r % 3}",
                  f"    blend: {{s{r % 8}: \"{p}\", s{(r + 3) % 8}: 0.5}}",
                  "    transition: {at: " + ["beat", "bar", "immediate"][r % 3] + ", fade_ms: 800}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", type=int, default=50)
    ap.add_argument("--frames", type=int, default=5000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    presets = rng.normal(size=(PRESETS, DIM))
    presets /= np.linalg.norm(presets, axis=1, keepdims=True)
    log_tempi = np.log(np.linspace(60, 160, PRESETS))

    class StyleOnly(Backend):
        """Random 384-d style vectors and the synth's tempo softmax; no audio."""

        name, style_dim = "bench", DIM

        def __init__(self) -> None:
            self.vectors: dict[str, np.ndarray] = {}

        def embed_text(self, text: str) -> np.ndarray:
            if text not in self.vectors:
                v = rng.normal(size=DIM)
                self.vectors[text] = (v / np.linalg.norm(v)).astype(np.float32)
            return self.vectors[text]

        def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray:
            return self.embed_text("audio")

        def preferred_tempo(self, style: np.ndarray) -> float:
            w = np.exp((presets @ style) / 0.04)
            return float(np.exp((w / w.sum()) @ log_tempi))

        def reset(self, seed: int | None = None) -> None:
            pass

        def generate(self, cond, n_frames: int = 1) -> np.ndarray:
            return np.zeros((1920 * n_frames, 2), np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_text(make_map(args.rules))
        smap = load(path)
    director = Director(smap, StyleOnly())
    costs = []
    for k in range(args.frames):
        if k % 10 == 0:
            director.set_param(f"p{(k // 10) % 4}", float(rng.random()))
        if k % 250 == 0:
            director.set_state("area", "abcd"[(k // 250) % 4])
            director.set_state("mode", ["calm", "alert"][(k // 500) % 2])
        t = time.perf_counter()
        director.step()
        costs.append((time.perf_counter() - t) * 1000)
    c = np.array(costs[100:])
    print(json.dumps({"bench": "director_eval", "rules": len(smap.rules), "frames": len(c),
                      "p50_ms": round(float(np.percentile(c, 50)), 4),
                      "p99_ms": round(float(np.percentile(c, 99)), 4),
                      "mean_ms": round(float(c.mean()), 4), "bar_ms": 0.2}))


if __name__ == "__main__":
    main()
