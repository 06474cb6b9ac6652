"""The studio's control -> heard latency and the page's CPU use, in a real headless Chromium.

The page moves the danger slider at random moments; for each move it measures, on its own
clock, from the input event to the moment the worklet plays the first sample generated under
it (the reply's `pos`, mapped through AudioContext.getOutputTimestamp). The page's CPU use is
the renderer's task time over wall time (Chrome DevTools Performance metrics).

    python bench/bench_studio.py [--moves 60] [--cushions 2 3]

One JSON line per cushion (frames the worklet holds before playing), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.studio_helpers import CHROMIUM_ARGS, STUDIO_MAP, Studio, chromium_path, open_page  # noqa: E402


def cpu_seconds(cdp) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["TaskDuration"]


def run(browser, url: str, cushion: int, moves: int) -> dict:
    page = open_page(browser, f"{url}?cushion={cushion}")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.wait_for_timeout(2000)
    page.evaluate("studio.latencies.length = 0")
    underruns0 = page.evaluate("studio.worklet.underruns")
    cpu0, t0 = cpu_seconds(cdp), time.monotonic()
    rng = random.Random(cushion)
    slider = page.locator('input[data-param="danger"]')
    for _ in range(moves):
        slider.fill(f"{rng.uniform(0, 1):.3f}")
        page.wait_for_timeout(rng.uniform(150, 450))
    page.wait_for_timeout(1500)
    cpu, wall = cpu_seconds(cdp) - cpu0, time.monotonic() - t0
    lat = np.array(page.evaluate("studio.latencies"))
    w = page.evaluate("studio.worklet")
    page.close()
    return {"bench": "studio_control_to_heard", "cushion_frames": cushion, "moves": moves,
            "measured": len(lat),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
            "latency_ms_max": round(float(lat.max()), 1), "worklet_underruns": w["underruns"] - underruns0,
            "page_cpu_percent": round(100 * cpu / wall, 1), "seconds": round(wall, 1), "target_p95_ms": 200}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=60)
    ap.add_argument("--cushions", type=int, nargs="+", default=[2, 3])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        map_path = Path(tmp) / "studio_test.yaml"
        map_path.write_text(STUDIO_MAP)
        studio = Studio(map_path)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                for cushion in args.cushions:
                    print(json.dumps(run(browser, studio.url, cushion, args.moves)), flush=True)
                browser.close()
        finally:
            studio.stop()


if __name__ == "__main__":
    main()
