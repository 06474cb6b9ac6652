"""Control latency of `scorewright serve` (synth backend, default lookahead 3 frames).

For each `set`/`state` message: from the moment it leaves the client to the moment the first
sample generated under the new conditioning is due to play (its position in the paced stream,
which the server returns in the reply as `due`). Also reports the middleware's own share
(message received -> conditioning applied to a generated frame) from the server's telemetry.

    python bench/bench_latency.py [--messages 300] [--lookahead 1 2 3 4] [--load]

--load keeps a busy process spinning on the CPU (a game next door). Prints one JSON line per
lookahead setting, with a histogram of latencies in 10 ms bins.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from scorewright.client import wait_for_server
from scorewright.transport import free_ports

MAPS = Path(__file__).resolve().parents[1] / "middleware" / "scorewright" / "state_maps"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--lookahead", type=int, nargs="+", default=[3])
    ap.add_argument("--load", action="store_true", help="run a busy process on the second core")
    args = ap.parse_args()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    try:
        for lookahead in args.lookahead:
            print(json.dumps(measure(args.messages, lookahead, args.load)), flush=True)
    finally:
        if busy:
            busy.kill()


def measure(messages: int, lookahead: int, loaded: bool) -> dict:
    control, audio = free_ports(2)
    proc = subprocess.Popen([sys.executable, "-m", "scorewright.cli", "--log-level", "warning", "serve",
                             str(MAPS / "demo.yaml"), "--control-port", str(control),
                             "--audio-port", str(audio), "--tcp-port", "0", "--web-port", "0",
                             "--ring", f"bench-{uuid.uuid4().hex[:6]}", "--lookahead", str(lookahead)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    try:
        client = wait_for_server(f"tcp://127.0.0.1:{control}", process=proc)
        time.sleep(1.0)                  # let the stream settle
        rng = random.Random(0)
        latencies = []
        for i in range(messages):
            time.sleep(rng.uniform(0.02, 0.12))   # land anywhere inside a frame
            sent = time.time()
            if i % 2:
                reply = client.set("danger", rng.random(), wait=True)
            else:
                reply = client.state("area", rng.choice(["forest", "cave", "castle"]), wait=True)
            latencies.append((reply["due"] - sent) * 1000)
        time.sleep(0.2)
        status = client.get_status()
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
    lat = np.array(latencies)
    edges = np.arange(0, max(200, int(lat.max()) + 10) + 10, 10)
    counts, _ = np.histogram(lat, edges)
    return {
        "bench": "control_latency", "backend": status["backend"], "lookahead_frames": lookahead,
        "cpu_loaded": loaded, "messages": len(lat), "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p95_ms": round(float(np.percentile(lat, 95)), 2), "max_ms": round(float(lat.max()), 2),
        "middleware_apply_p95_ms": status["apply_ms_p95"], "underruns": status["underruns"],
        "histogram_10ms": {f"{int(e)}": int(n) for e, n in zip(edges, counts, strict=False) if n},
        "bar_p95_ms": 150.0,
    }


if __name__ == "__main__":
    main()
