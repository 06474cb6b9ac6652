"""Latency of the Godot addon, measured in Godot 4 (headless, scripts/godot4.sh).

For each `set` message a ScorewrightMusic node sends: from the moment it is sent to the moment
the first sample generated under it is heard. The reply's `pos` (that sample's stream
position) is turned into a time with the node's seconds_until_heard(): what Godot's mixer has
taken from the AudioStreamGenerator, plus AudioServer.get_time_since_last_mix(), minus
AudioServer.get_output_latency() (Godot's recipe for syncing to audio). Split into the
server's share (reply `due` - sent) and Godot's (heard - due: the cushion and the generator,
less the 80 ms the server sends ahead).

    python bench/bench_godot.py [--messages 200] [--cushions 1 2 3 4]

Prints one JSON line: p50/p95 per cushion (always including the addon's default, read from
scorewright_music.gd), skips (the generator running dry after the cushion filled), and the
mixer's measured period. Headless Godot mixes with the Dummy driver: 4096-frame blocks
(85-93 ms), about half of which sits in the generator on average, and an output latency of 0.
A sound card mixes in ~10-25 ms blocks and reports its output latency (typically 15-25 ms),
which Godot's share then includes; that case needs a machine with audio and is not measured
here.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.godot_helpers import FixedServer, godot_command, godot_version, import_project  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "middleware" / "scorewright" / "state_maps" / "demo.yaml"
NODE = REPO / "game_bindings" / "godot" / "addons" / "scorewright" / "scorewright_music.gd"
TARGET_P95_MS = 150.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--cushions", type=int, nargs="+", default=[1, 2, 3, 4])
    args = ap.parse_args()
    default = int(re.search(r"var cushion_frames: int = (\d+)", NODE.read_text()).group(1))
    version, out = godot_version(build=True)
    if version is None:
        sys.exit(f"bench_godot: no Godot 4 runtime (scripts/godot4.sh failed):\n{out}")
    import_project()
    cushions = sorted(set(args.cushions) | {default})
    print(json.dumps(run(version, args.messages, cushions, default)), flush=True)


def run(version: str, messages: int, cushions: list[int], default: int) -> dict:
    srv = FixedServer(DEMO, extra=["--backend", "synth"])
    srv.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report_path = Path(tmp) / "latency.json"
            cmd = godot_command("-s", "res://bench/latency.gd", "--", f"--port={srv.tcp}",
                                f"--out={report_path}", f"--messages={messages}",
                                f"--cushions={','.join(map(str, cushions))}")
            started = time.monotonic()
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 30 * len(cushions)
                               + messages * 0.2 * len(cushions), stdin=subprocess.DEVNULL)
            if r.returncode != 0 or not report_path.exists():
                sys.exit(f"bench_godot: Godot failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
            report = json.loads(report_path.read_text())
            wall_s = time.monotonic() - started
    finally:
        srv.stop()
    per_cushion = {c: summarise(res) for c, res in report["cushions"].items()}
    return {
        "bench": "godot_latency", "godot": version.removeprefix("Godot "), "driver": report["driver"],
        "mix_rate": report["mix_rate"], "output_latency_ms": round(report["output_latency_s"] * 1000, 2),
        "backend": "synth", "map": "demo", "message": "set danger", "messages_per_cushion": messages,
        "default_cushion": default, "target_p95_ms": TARGET_P95_MS,
        "default_meets_target": per_cushion[str(default)]["heard_p95_ms"] <= TARGET_P95_MS
        and per_cushion[str(default)]["skips"] == 0,
        "cushions": per_cushion, "wall_s": round(wall_s, 1),
    }


def summarise(res: dict) -> dict:
    def pct(key: str, q: float) -> float:
        return round(float(np.percentile([s[key] for s in res["samples"]], q)), 1)
    return {
        "replies": res["replies"], "skips": res["skips"], "underruns": res["underruns"],
        "lost_frames": res["lost_frames"], "mix_block_ms": round(res["mix_block"] / 48, 1),
        "heard_p50_ms": pct("heard_ms", 50), "heard_p95_ms": pct("heard_ms", 95),
        "heard_max_ms": pct("heard_ms", 100),
        "server_due_p50_ms": pct("due_ms", 50), "server_due_p95_ms": pct("due_ms", 95),
        "godot_share_p50_ms": round(pct("heard_ms", 50) - pct("due_ms", 50), 1),
        "reply_p95_ms": pct("reply_ms", 95),
    }


if __name__ == "__main__":
    main()
