"""The Linux bundle (`scorewright bundle`): its size unpacked, how long it takes to build, and
start -> first audio: from starting the executable to the first `audio` message on framed TCP
(listening, loading the map, the embedder and the SoundFont, the first frames). One JSON line.

    python bench/bench_bundle.py [--runs 5] [--bundle DIR] [--out bench/results/bundle_DATE.jsonl]

Without --bundle it builds one into a temporary folder (the build time is then measured too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scorewright.transport import free_ports  # noqa: E402
from tests.bundle_helpers import CLEAN_ENV, executable, listen, wait_listening  # noqa: E402


def build(out: Path) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "scorewright.cli", "bundle", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def first_audio(bundle: Path) -> tuple[float, float]:
    """(seconds to listening, seconds to the first audio message) from starting the process."""
    ports = free_ports(3)
    args = [str(executable(bundle)), "--log-level", "warning", "serve", "demo", "--control-port",
            str(ports[0]), "--audio-port", str(ports[1]), "--tcp-port", str(ports[2]), "--web-port", "0",
            "--ring", f"bench-{uuid.uuid4().hex[:8]}"]
    start = time.monotonic()
    proc = subprocess.Popen(args, env=CLEAN_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with wait_listening(ports[2], proc, within=60) as sock:
            listening = time.monotonic() - start
            got = listen(sock, 30.0, until_audio=True)
        if got["first_audio_at"] is None:
            raise RuntimeError("no audio within 30 s")
        return listening, got["first_audio_at"] - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bundle", type=Path, default=None, help="an existing bundle (skips the build)")
    ap.add_argument("--out", type=Path, default=None, help="append the JSON line to this file too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle, build_s = args.bundle, None
        if bundle is None:
            bundle = Path(tmp) / "scorewright-server"
            build_s = build(bundle)
        info = json.loads((bundle / "bundle.json").read_text())
        first_audio(bundle)                                   # warm the page cache once
        runs = [first_audio(bundle) for _ in range(args.runs)]
    listening, audio = np.array(runs).T

    def stats(x: np.ndarray) -> dict:
        return {"p50": round(float(np.median(x)), 3), "max": round(float(x.max()), 3)}
    line = json.dumps({
        "bench": "bundle", "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
        "cpus": os.cpu_count(), "bundle_bytes": info["bytes"], "bundle_mb": round(info["bytes"] / 1e6, 1),
        "embedder": info["embedder"], "build_s": round(build_s, 1) if build_s else None, "runs": args.runs,
        "start_to_listen_s": stats(listening), "start_to_first_audio_s": stats(audio),
    })
    print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
