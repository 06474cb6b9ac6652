"""`scorewright render | demo | trace`: a map and an event script, offline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.text import Text

from ..audio import FRAME_SECONDS, write_wav
from ..conditioning import Conditioning
from ..engine import Frame
from ..statemap.load import bundled_map
from .output import console, say, warn

DEMO_SECONDS = 46.0


def _drums_word(d: int) -> str:
    return {1: "on", 0: "off"}.get(d, "free")


def describe(cond: Conditioning) -> str:
    """'combat 82% · tension 18% | 148 bpm | drums on'."""
    styles = " · ".join(f"{k} {v:.0%}" for k, v in sorted(cond.weights.items(), key=lambda kv: -kv[1])
                        if v >= 0.05)
    return f"{styles} | {cond.tempo_bpm:.0f} bpm | drums {_drums_word(cond.drums)}"


def open_map(map_arg: str, seed: int | None, backend: str | None):
    from ..session import open_engine
    from ..statemap.load import resolve_map
    return open_engine(resolve_map(map_arg), seed=seed, backend=backend)


def _load_events(path: str | Path | None, seconds: float | None):
    """(script items, sections, seconds to render: given, else the script's length)."""
    from ..script import load_script, script_seconds
    items, sections = load_script(path) if path else ([], [])
    return items, sections, script_seconds(items) if seconds is None else seconds


def _seed(args: argparse.Namespace, events: str | Path | None) -> int | None:
    """The seed asked for, else a session recording's own (so a replay sounds as recorded)."""
    if args.seed is not None or not events:
        return args.seed
    from ..script import recorded_seed
    return recorded_seed(events)


def _skipped(item, err) -> None:
    warn(f"script t={item.t}: {err} ({err.code}); skipped")


def _render(args: argparse.Namespace, script_path: Path | None, out: Path):
    """Shared by render and demo: (seconds taken, [(t, label, description)], engine, seconds)."""
    items, sections, seconds = _load_events(script_path, args.seconds)
    engine = open_map(args.map, _seed(args, script_path), getattr(args, "backend", None))
    rows: list[tuple[float, str, str]] = []
    marks = sorted(sections, key=lambda s: s.t)
    label, last_desc, last_t = "", "", -10.0

    def on_frame(k: int, frame: Frame) -> None:
        nonlocal label, last_desc, last_t
        cond = frame.cond
        if cond is None:
            return
        t = k * FRAME_SECONDS
        new_section = False
        while marks and marks[0].t <= t:
            label, new_section = marks.pop(0).label, True
        desc = describe(cond)
        if new_section or (desc.split("|")[0] != last_desc.split("|")[0] and t - last_t >= 2.0):
            rows.append((t, label if new_section else "", desc))
            last_desc, last_t = desc, t

    t0 = time.perf_counter()
    pcm = engine.render(seconds, items, on_frame, _skipped)
    took = time.perf_counter() - t0
    write_wav(out, pcm)
    return took, rows, engine, seconds


def cmd_render(args: argparse.Namespace) -> int:
    took, rows, engine, seconds = _render(args, Path(args.events) if args.events else None, Path(args.out))
    for t, label, desc in rows:
        say(f"  {t:6.2f}s  {label:<22} {desc}")
    console.print(Text.assemble(("wrote ", "green"), (args.out, "green"),
                                f": {seconds:g} s in {took:.2f} s ({seconds / took:.2g}x real time, "
                                f"backend {engine.backend.name}, seed {engine.director.seed})"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..playback import PLAYER_NAMES, play
    args.map = str(bundled_map("demo"))
    script = Path(args.map).parent / "scripts" / "demo.yaml"
    out = Path(args.out)
    console.print("[bold]Scorewright demo[/]: calm exploration → rising danger → combat → a stinger → calm")
    say("rendering with the bundled demo map (the first run loads the style model)...", "dim")
    took, rows, engine, seconds = _render(args, script, out)
    say(f"wrote {out} ({seconds:g} s of 48 kHz stereo in {took:.1f} s, backend {engine.backend.name})",
        "green")
    player = None if args.no_play else play(out)
    if player is None and not args.no_play:
        warn(f"no audio player found ({', '.join(PLAYER_NAMES)}); open {out} in any player")
    start = time.monotonic()
    try:
        for t, label, desc in rows:
            if player is not None and (problem := player.wait_until(start + t)):
                warn(f"playback with {player.name} failed ({problem}); the file is {out}")
                player = None
            mm, ss = divmod(t, 60)
            console.print(Text.assemble(f"  {int(mm)}:{ss:05.2f}  ", (f"{label:<22}", "bold cyan"),
                                        f" {desc}"))
        if player is not None and (problem := player.wait_until(start + seconds)):
            warn(f"playback with {player.name} failed ({problem}); the file is {out}")
    except KeyboardInterrupt:
        if player is not None:
            player.stop()
    console.print("Next: [bold]scorewright serve demo[/] and drive it from your game "
                  "(README: 5-minute tour), or [bold]scorewright demo --backend mrt2[/] with MRT2 installed.")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from ..trace import changes, format_row, plot, trace
    items, _, seconds = _load_events(args.events, args.seconds)
    engine = open_map(args.map, _seed(args, args.events), None)

    def on_error(item, err) -> None:
        print(f"# t={item.t}: {err} ({err.code}); skipped")
    rows = trace(engine, seconds, items, on_error)
    for r in rows if args.every_frame else changes(rows):
        print(format_row(r))
    if args.plot:
        plot(rows, Path(args.plot), f"{engine.director.map.name}: {args.events or 'no events'}")
        say(f"wrote {args.plot}", "green")
    return 0


SECONDS_HELP = "seconds to render (default: the script's last message + 8 s, or 30 s without a script)"


def add_parsers(sub, backends: list[str]) -> None:
    d = sub.add_parser("demo", help="render and play a short adaptive-music demo")
    d.add_argument("--no-play", action="store_true", help="only write the WAV file")
    d.add_argument("--out", default="scorewright-demo.wav", help="WAV file to write")
    d.add_argument("--seconds", type=float, default=DEMO_SECONDS, help="seconds to render")
    d.add_argument("--seed", type=int, default=None, help="random seed (default: the map's)")
    d.add_argument("--backend", choices=backends, default=None,
                   help="generator (default: the demo map's, synth); mrt2 needs PyTorch and the weights")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("render", help="render a map and an event script to a WAV file, offline")
    r.add_argument("map", help="state map file (or the name of a bundled map, e.g. demo)")
    r.add_argument("--events", help="event script (YAML list of timed messages), a session recording, or a "
                   "bundled map's script by name (e.g. demo)")
    r.add_argument("--out", required=True, help="WAV file to write")
    r.add_argument("--seconds", type=float, default=None, help=SECONDS_HELP)
    r.add_argument("--seed", type=int, default=None,
                   help="random seed (default: a recording's own, else the map's)")
    r.add_argument("--backend", choices=backends, default=None, help="override the map's backend")
    r.set_defaults(func=cmd_render)

    t = sub.add_parser("trace", help="print what the director does with a map and an event script")
    t.add_argument("map", help="state map file (or the name of a bundled map, e.g. demo)")
    t.add_argument("--events", help="event script, session recording, or a bundled map's script name")
    t.add_argument("--seconds", type=float, default=None, help=SECONDS_HELP)
    t.add_argument("--seed", type=int, default=None, help="random seed (default: the map's)")
    t.add_argument("--every-frame", action="store_true", help="one line per frame, not per change")
    t.add_argument("--plot", metavar="PNG", help="also draw weights, params and notes (needs matplotlib)")
    t.set_defaults(func=cmd_trace)
