"""The sample game's event -> heard latency and audio gaps, on a real-time audio clock.

The game measures each message from the moment it sends it to the moment the chunk holding the
first affected sample (the reply's `pos`) leaves its device buffer, on the clock of the sound
card's own callbacks (`--stats`: latency_ms_p50/p95). SDL's dummy and disk drivers do not keep
real time, so this bench runs the game against a PulseAudio null sink (a timer-paced virtual
sound card), started privately for the run: `apt install pulseaudio` if it is missing.

    python bench/bench_game_latency.py [--seconds 40] [--configs 3:1.5 2:1.5 4:3]

Each config is LOOKAHEAD:CUSHION (server frames ahead : frames the game holds). One JSON line
per config, all measured in the same run; the first is the game's default.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_pulseaudio(runtime: Path) -> subprocess.Popen:
    """A private PulseAudio daemon whose default sink is a 48 kHz null sink."""
    if shutil.which("pulseaudio") is None:
        raise SystemExit("needs PulseAudio for a real-time audio clock: apt install pulseaudio")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    proc = subprocess.Popen(["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n",
                             "--load=module-null-sink sink_name=bench rate=48000",
                             "--load=module-native-protocol-unix"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("PulseAudio did not start")


def run_game(seconds: float, lookahead: int, cushion: float, runtime: Path, out: Path) -> dict:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SDL_AUDIODRIVER": "pulseaudio",
           "SDL_VIDEODRIVER": "dummy"}
    cmd = [sys.executable, "-m", "sample_game", "--autoplay", str(seconds), "--stats", str(out),
           "--lookahead", str(lookahead), "--cushion", str(cushion)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if r.returncode != 0:
        raise SystemExit(f"the game failed:\n{r.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="autoplay time per config")
    ap.add_argument("--configs", nargs="+", default=["3:1.5", "2:1.5", "4:3"], help="LOOKAHEAD:CUSHION pairs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Path(tmp) / "run"
        runtime.mkdir(mode=0o700)
        pulse = start_pulseaudio(runtime)
        try:
            for i, config in enumerate(args.configs):
                lookahead, cushion = config.split(":")
                s = run_game(args.seconds, int(lookahead), float(cushion), runtime, Path(tmp) / f"{i}.json")
                print(json.dumps({
                    "bench": "game_event_to_heard", "audio_driver": s["audio_driver"],
                    "lookahead": int(lookahead), "cushion_frames": float(cushion), "seconds": args.seconds,
                    "messages": s["latency_count"], "latency_ms_p50": s.get("latency_ms_p50"),
                    "latency_ms_p95": s.get("latency_ms_p95"), "latency_ms_max": s.get("latency_ms_max"),
                    "gaps": s["gaps"], "server_underruns": s["underruns"], "fps_avg": round(s["fps_avg"], 1),
                    "max_callback_gap_ms": s["max_callback_gap_ms"], "default": i == 0}), flush=True)
        finally:
            pulse.terminate()
            pulse.wait(10)


if __name__ == "__main__":
    main()
