"""Offline render speed: `scorewright render` of the demo map and script (default 60 s).

    python bench/bench_render.py [--seconds 60]

Prints one JSON line; wall time covers the whole command (start-up, model load, render, WAV).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAPS = Path(__file__).resolve().parents[1] / "middleware" / "scorewright" / "state_maps"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scorewright.cli", "render", str(MAPS / "demo.yaml"),
                        "--events", str(MAPS / "scripts" / "demo.yaml"), "--out", f"{tmp}/out.wav",
                        "--seconds", str(args.seconds)], check=True, capture_output=True)
        wall = time.perf_counter() - t
    print(json.dumps({"bench": "render_demo", "audio_s": args.seconds, "wall_s": round(wall, 3),
                      "x_realtime": round(args.seconds / wall, 1), "bar_wall_s": args.seconds / 10}))


if __name__ == "__main__":
    main()
