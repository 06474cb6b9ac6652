"""Soak test of `scorewright serve` (real time; the map's backend, or --backend).

A game-like client sends 10-60 messages/s (params, states, events, notes, a few deliberately
bad ones); a ring reader and a ZMQ subscriber consume the audio; the ring reader stalls for 2 s
now and then; a second client connects and disconnects every few seconds.

    python bench/soak.py --minutes 10

Prints one JSON line; exits 1 when a target is missed (0 underruns, 0 unhandled errors, RSS
growth < 20 MB, no gap in the subscriber's stream).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from scorewright.client import AudioSubscriber, Client, RingReader, wait_for_server
from scorewright.transport import free_ports

MAPS = Path(__file__).resolve().parents[1] / "middleware" / "scorewright" / "state_maps"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}

    def add(self, key: str, n: float = 1) -> None:
        with self.lock:
            self.values[key] = self.values.get(key, 0) + n


def game_client(addr: str, stop: threading.Event, c: Counters, seed: int) -> None:
    rng = random.Random(seed)
    client = Client.connect(addr, name="soak-game")
    while not stop.is_set():
        rate = rng.uniform(10, 60)
        for _ in range(int(rate)):
            r = rng.random()
            if r < 0.5:
                client.set("danger", rng.random())
            elif r < 0.7:
                client.state("area", rng.choice(["forest", "cave", "castle"]))
            elif r < 0.8:
                client.notes(on=[rng.randrange(48, 84)], off=[rng.randrange(48, 84)])
            elif r < 0.85:
                client.event("player_died")
            elif r < 0.9:
                client.send("set", param="danger", value="very")        # deliberately bad
                c.add("bad_sent")
            else:
                client.send("ping")
            c.add("sent")
            time.sleep(1.0 / rate)
            if stop.is_set():
                break
        client.poll_replies()
    time.sleep(0.3)
    client.poll_replies()
    c.add("error_replies", client.error_count)
    client.close()


def flaky_client(addr: str, stop: threading.Event, c: Counters) -> None:
    while not stop.wait(2.5):
        try:
            with Client.connect(addr, name="soak-flaky", timeout=2.0) as client:
                client.set("danger", 0.3, wait=True)
                c.add("reconnects")
        except (ConnectionError, TimeoutError):
            c.add("reconnect_failures")


def ring_reader(ring_path: str, stop: threading.Event, c: Counters) -> None:
    reader = RingReader(path=ring_path)
    next_stall = time.monotonic() + 7
    while not stop.is_set():
        if time.monotonic() > next_stall:
            time.sleep(2.0)                          # a stalled game thread
            reader.skip_to_latest(1920 * 2)
            c.add("reader_stalls")
            next_stall = time.monotonic() + 11
        block = reader.read(960)
        c.add("ring_pairs", len(block))
        time.sleep(0.01)


def subscriber(addr: str, stop: threading.Event, c: Counters) -> None:
    with AudioSubscriber(addr) as sub:
        while not stop.is_set():
            if sub.recv(1.0) is None:
                c.add("pub_timeouts")
            else:
                c.add("pub_frames")
        c.add("pub_lost", sub.lost)


def main() -> int:
    logging.getLogger("scorewright.client").setLevel(logging.ERROR)   # the bad messages are deliberate
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--map", default=str(MAPS / "demo.yaml"))
    ap.add_argument("--backend", choices=["synth", "mrt2"], default="synth")
    args = ap.parse_args()
    control, audio = free_ports(2)
    ring = f"soak-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "scorewright.cli", "--log-level", "error", "serve", args.map,
           "--control-port", str(control), "--audio-port", str(audio), "--tcp-port", "0", "--web-port", "0",
           "--ring", ring,
           "--backend", args.backend]
    log = tempfile.TemporaryFile()            # a file, not a pipe: a chatty server never blocks
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=os.environ)
    addr = f"tcp://127.0.0.1:{control}"
    try:
        probe = wait_for_server(addr, within=180.0, process=proc)   # mrt2 loads its weights first
        ring_file = probe.status["ring"]
        time.sleep(2.0)                                       # warm up before measuring memory
        rss_start = rss_mb(proc.pid)
        c, stop = Counters(), threading.Event()
        threads = [threading.Thread(target=game_client, args=(addr, stop, c, 1)),
                   threading.Thread(target=flaky_client, args=(addr, stop, c)),
                   threading.Thread(target=ring_reader, args=(ring_file, stop, c)),
                   threading.Thread(target=subscriber, args=(f"tcp://127.0.0.1:{audio}", stop, c))]
        for t in threads:
            t.start()
        stop.wait(args.minutes * 60)
        stop.set()
        for t in threads:
            t.join(10)
        status = probe.get_status()
        rss_end = rss_mb(proc.pid)
        probe.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        err = log.read()
    v = c.values
    unhandled = err.decode(errors="replace").count("Traceback")
    report = {
        "bench": "soak", "backend": args.backend, "minutes": args.minutes, "frames": status["frame"],
        "underruns": status["underruns"], "max_generation_ms": status["cost_ms_max"],
        "lookahead_low": status["lookahead_low"], "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1), "rss_growth_mb": round(rss_end - rss_start, 1),
        "messages_handled": status["messages"], "errors_answered": status["errors"],
        "bad_messages_sent": int(v.get("bad_sent", 0)), "error_replies_seen": int(v.get("error_replies", 0)),
        "messages_sent": int(v.get("sent", 0)), "reconnects": int(v.get("reconnects", 0)),
        "reconnect_failures": int(v.get("reconnect_failures", 0)),
        "reader_stalls": int(v.get("reader_stalls", 0)), "pub_frames": int(v.get("pub_frames", 0)),
        "pub_lost": int(v.get("pub_lost", 0)), "backend_errors": status["backend_errors"],
        "unhandled_exceptions": unhandled, "server_exit": proc.returncode,
    }
    report["ok"] = (report["underruns"] == 0 and report["unhandled_exceptions"] == 0
                    and report["rss_growth_mb"] < 20 and report["pub_lost"] == 0
                    and report["errors_answered"] == report["bad_messages_sent"]
                    and report["error_replies_seen"] == report["bad_messages_sent"]
                    and report["reconnect_failures"] == 0 and report["server_exit"] == 0)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
