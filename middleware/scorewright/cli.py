"""The `scorewright` command: demo, serve, render, trace, validate, models."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from .audio import write_wav
from .backends.base import BackendUnavailable
from .conditioning import Conditioning
from .engine import Frame
from .statemap.load import MapError, bundled_map, load, resolve_map

console = Console(stderr=True, highlight=False)


def _drums_word(d: int) -> str:
    return {1: "on", 0: "off"}.get(d, "free")


def describe(cond: Conditioning) -> str:
    """'combat 82% · tension 18% | 148 bpm | drums on'."""
    styles = " · ".join(f"{k} {v:.0%}" for k, v in sorted(cond.weights.items(), key=lambda kv: -kv[1])
                        if v >= 0.05)
    return f"{styles} | {cond.tempo_bpm:.0f} bpm | drums {_drums_word(cond.drums)}"


def _open(map_arg: str, seed: int | None, backend: str | None):
    from .session import open_engine
    return open_engine(resolve_map(map_arg), seed=seed, backend=backend)


def _render(args: argparse.Namespace, script_path: Path | None, out: Path, quiet: bool = False):
    """Shared by render and demo: returns (seconds taken, [(t, label, description)])."""
    from .script import load_script
    items, sections = load_script(script_path) if script_path else ([], [])
    engine = _open(args.map, args.seed, getattr(args, "backend", None))
    rows: list[tuple[float, str, str]] = []
    marks = sorted(sections, key=lambda s: s.t)
    label, last_desc, last_t = "", "", -10.0

    def on_frame(k: int, frame: Frame) -> None:
        nonlocal label, last_desc, last_t
        cond = frame.cond
        if cond is None:
            return
        t = k * 0.04
        new_section = False
        while marks and marks[0].t <= t:
            label, new_section = marks.pop(0).label, True
        desc = describe(cond)
        if new_section or (desc.split("|")[0] != last_desc.split("|")[0] and t - last_t >= 2.0):
            rows.append((t, label if new_section else "", desc))
            last_desc, last_t = desc, t

    def on_error(item, err) -> None:
        console.print(f"[yellow]script t={item.t}: {err} ({err.code}); skipped[/]")

    t0 = time.perf_counter()
    pcm = engine.render(args.seconds, items, on_frame, on_error)
    took = time.perf_counter() - t0
    write_wav(out, pcm)
    return took, rows, engine


def cmd_render(args: argparse.Namespace) -> int:
    took, rows, engine = _render(args, Path(args.events) if args.events else None, Path(args.out))
    for t, label, desc in rows:
        console.print(f"  {t:6.2f}s  {label:<22} {desc}", soft_wrap=True)
    console.print(f"[green]wrote {args.out}[/]: {args.seconds:g} s in {took:.2f} s "
                  f"({args.seconds / took:.2g}x real time, backend {engine.backend.name}, "
                  f"seed {engine.director.seed})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .playback import play
    args.map = str(bundled_map("demo"))
    script = Path(args.map).parent / "scripts" / "demo.yaml"
    out = Path(args.out)
    console.print("[bold]Scorewright demo[/]: calm exploration → rising danger → combat → a stinger → calm")
    console.print("[dim]rendering with the bundled demo map (first run loads the style model)...[/]")
    took, rows, engine = _render(args, script, out)
    console.print(f"[green]wrote {out}[/] ({args.seconds:g} s of 48 kHz stereo in {took:.1f} s, "
                  f"backend {engine.backend.name})")
    player = None if args.no_play else play(out)
    if player is None and not args.no_play:
        console.print("[yellow]no audio player found (afplay, pw-play, paplay, aplay, ffplay); "
                      f"open {out} in any player[/]")
    start = time.perf_counter()
    try:
        for t, label, desc in rows:
            if player is not None:
                time.sleep(max(0.0, t - (time.perf_counter() - start)))
                if player.proc is not None and player.proc.poll() not in (None, 0):
                    err = player.proc.stderr.read().decode(errors="replace").strip().splitlines()
                    console.print(f"[yellow]playback with {player.name} failed "
                                  f"({err[-1] if err else 'no sound card?'}); the file is {out}[/]")
                    player = None
            mm, ss = divmod(t, 60)
            console.print(f"  {int(mm)}:{ss:05.2f}  [bold cyan]{label:<22}[/] {desc}", soft_wrap=True)
        if player is not None and not player.wait():
            console.print(f"[yellow]playback with {player.name} failed; the file is {out}[/]")
    except KeyboardInterrupt:
        if player is not None:
            player.stop()
    console.print("Next: [bold]scorewright serve demo[/] and drive it from your game "
                  "(see README: 5-minute tour).")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for m in args.maps:
        try:
            smap = load(resolve_map(m))
        except MapError as e:
            for p in e.problems:
                print(p)
            status = 1
            continue
        console.print(f"[green]ok[/] {m}: {len(smap.styles)} styles, {len(smap.params)} params, "
                      f"{len(smap.states)} state groups, {len(smap.rules)} rules, "
                      f"{len(smap.stingers)} stingers")
    return status


def cmd_trace(args: argparse.Namespace) -> int:
    from .script import load_script
    from .trace import changes, format_row, plot, trace
    items, _ = load_script(args.events) if args.events else ([], [])
    engine = _open(args.map, args.seed, None)

    def on_error(item, err) -> None:
        print(f"# t={item.t}: {err} ({err.code}); skipped")
    rows = trace(engine, args.seconds, items, on_error)
    for r in rows if args.every_frame else changes(rows):
        print(format_row(r))
    if args.plot:
        plot(rows, Path(args.plot), f"{engine.director.map.name}: {args.events or 'no events'}")
        console.print(f"[green]wrote {args.plot}[/]")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List, verify or download the MRT2 files (the models folder follows the official layout)."""
    from rich.table import Table

    from .backends.mrt2 import models
    if args.action == "download":
        for size in args.sizes:
            try:
                models.download(size, progress=lambda m: console.print(m))
            except Exception as e:  # network, auth, disk: say what failed and where
                console.print(f"[red]error:[/] download of {size} failed: {e}")
                return 2
        console.print(f"done; files under {models.root()}")
        return 0
    check = args.action == "verify"
    if check:
        try:
            import torch  # noqa: F401
        except ImportError:
            console.print("[red]error:[/] verifying checkpoints needs PyTorch: "
                          "pip install 'scorewright[mrt2]'")
            return 2
    ok = True
    for size in args.sizes:
        rows = models.verify(size) if check else models.status(size)
        table = Table(title=f"MRT2 {size} — {models.root()}", title_justify="left")
        for col in ("file", "size", "status"):
            table.add_column(col)
        for r in rows:
            if not r.present:
                state = "[yellow]missing (optional: silence prefill)[/]" if r.optional else "[red]missing[/]"
            else:
                state = f"[red]{r.problem}[/]" if r.problem else "[green]ok[/]" if check else "present"
            ok &= (r.present or r.optional) and not r.problem
            size_text = f"{r.bytes / 1e6:,.1f} MB" if r.present else "-"
            table.add_row(str(r.path.relative_to(models.root())), size_text, state)
        console.print(table)
    if not ok:
        console.print("Missing files: `scorewright models download SIZE` (needs internet), or set "
                      "SCOREWRIGHT_MODELS to a folder with the official layout.")
    return 0 if ok or not check else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import ServeConfig, Server
    config = ServeConfig(host=args.host, control_port=args.control_port, audio_port=args.audio_port,
                         tcp_port=None if args.tcp_port == 0 else args.tcp_port,
                         ring=None if args.ring == "none" else args.ring, lookahead=args.lookahead,
                         token=args.token, record=args.record, watch=not args.no_reload)
    try:
        config.check()
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    import zmq

    from .transport.shm import RingInUse
    engine = _open(args.map, args.seed, args.backend)
    try:
        server = Server(engine, config)
    except (zmq.ZMQError, OSError) as e:
        console.print(f"[red]error:[/] cannot listen on {config.host} ({e}); is another "
                      "`scorewright serve` running? Choose other ports with --control-port, "
                      "--audio-port and --tcp-port")
        return 2
    except RingInUse as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    server.run_forever()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scorewright", description="Adaptive music middleware for games.")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="render and play a short adaptive-music demo")
    d.add_argument("--no-play", action="store_true", help="only write the WAV file")
    d.add_argument("--out", default="scorewright-demo.wav")
    d.add_argument("--seconds", type=float, default=46.0)
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--backend", choices=["synth", "mrt2"], default=None,
                   help="override the demo map's choice (mrt2 if installed with weights, else synth)")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("serve", help="run the middleware: control in, audio out")
    s.add_argument("map", help="state map file (or the name of a bundled map, e.g. demo)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--control-port", type=int, default=7700, help="ZMQ ROUTER for messages")
    s.add_argument("--audio-port", type=int, default=7701, help="ZMQ PUB for audio + telemetry")
    s.add_argument("--tcp-port", type=int, default=7702, help="framed-TCP port (0 = off)")
    s.add_argument("--ring", default="default",
                   help="shared-memory ring session name ('none' = off)")
    s.add_argument("--lookahead", type=int, default=3, help="frames generated ahead (40 ms each)")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--backend", choices=["synth", "mrt2"], default=None,
                   help="override the map's backend")
    s.add_argument("--token", default=None, help="shared secret clients send in 'hello' "
                   "(required when --host is not a loopback address)")
    s.add_argument("--record", metavar="FILE", default=None,
                   help="record every game message (replay: render MAP --events FILE)")
    s.add_argument("--no-reload", action="store_true", help="do not reload the map when it is edited")
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("render", help="render a map and an event script to a WAV file, offline")
    r.add_argument("map")
    r.add_argument("--events", help="event script (YAML list of timed messages)")
    r.add_argument("--out", required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--backend", choices=["synth", "mrt2"], default=None)
    r.set_defaults(func=cmd_render)

    t = sub.add_parser("trace", help="print what the director does with a map and an event script")
    t.add_argument("map")
    t.add_argument("--events", help="event script or session recording")
    t.add_argument("--seconds", type=float, default=30.0)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--every-frame", action="store_true", help="one line per frame, not per change")
    t.add_argument("--plot", metavar="PNG", help="also draw weights, params and notes (needs matplotlib)")
    t.set_defaults(func=cmd_trace)

    m = sub.add_parser("models", help="MRT2 weights: list what is here, verify it, or download it")
    m.add_argument("action", choices=["list", "verify", "download"])
    m.add_argument("sizes", nargs="*", default=["small", "base"], metavar="SIZE",
                   help="small and/or base (default both)")
    m.set_defaults(func=cmd_models)

    v = sub.add_parser("validate", help="check state maps; errors as file:line:col")
    v.add_argument("maps", nargs="+")
    v.set_defaults(func=cmd_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=console, show_path=False)])
    try:
        return args.func(args)
    except MapError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    except BackendUnavailable as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    except OSError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
