"""The Linux bundle (`scorewright bundle`) for the tests and bench: built once per source and
environment state into ~/.cache/scorewright/bundle/<key>/ (rebuilt when a source file or an
installed package changes), run as it is or inside Debian sid's root (no Python there), and a
framed-TCP client that times the first audio."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack

from scorewright.protocol import FrameReader, encode, frame

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "middleware" / "scorewright"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scorewright" / "bundle"
SID_ROOT = Path(os.environ.get("SCOREWRIGHT_GODOT_ROOT",
                               Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                               / "scorewright" / "godot-sid"))
# the game's map: the platformer example renamed (so it cannot be the example itself), with the
# two MIDI motifs it names, which --map must bring along
GAME_MAP_NAME, GAME_MAP_TITLE = "level", "shipped-level"
MAKE_IT = "CI=true python -m pytest tests/test_bundle.py (builds the bundle into ~/.cache, ~1 min)"
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}


def cache_key() -> str:
    """Hash of every source and data file, pyproject.toml and every installed distribution."""
    h = hashlib.sha256()
    for p in sorted(SOURCES.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes())
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(sys.version.encode())
    for d in sorted(f"{d.metadata['Name']}=={d.version}" for d in md.distributions()):
        h.update(d.encode())
    return h.hexdigest()[:16]


def cached_bundle(build: bool) -> tuple[Path | None, float | None]:
    """(the bundle's folder, seconds its build took here, or None when reused); (None, None)
    when it is not built and build is False. One build at a time (a lock file)."""
    target = CACHE / cache_key()
    if (target / "bundle.json").is_file():
        return target, None
    if not build:
        return None, None
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "bundle.json").is_file():
            return target, None
        for old in CACHE.iterdir():          # one bundle kept: earlier keys are stale
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        start = time.monotonic()
        game_map = stage_game_map(CACHE / "game-map")
        r = subprocess.run([sys.executable, "-m", "scorewright.cli", "bundle", "--out", str(target),
                            "--map", str(game_map)], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise RuntimeError(f"scorewright bundle failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        return target, time.monotonic() - start


def stage_game_map(folder: Path) -> Path:
    """A game's music folder: level.yaml (the platformer example, renamed) and motifs/."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SOURCES / "state_maps" / "motifs", folder / "motifs")
    text = (SOURCES / "state_maps" / "platformer.yaml").read_text()
    (folder / f"{GAME_MAP_NAME}.yaml").write_text(text.replace("name: platformer", f"name: {GAME_MAP_TITLE}"))
    return folder / f"{GAME_MAP_NAME}.yaml"


def executable(bundle: Path) -> Path:
    return bundle / json.loads((bundle / "bundle.json").read_text())["executable"]


def sid_available() -> str | None:
    """Why the sid root cannot be used here, or None when it can."""
    if not (SID_ROOT / ".scorewright-complete").is_file():
        return f"no Debian sid root at {SID_ROOT} (scripts/godot4.sh builds it)"
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("chroot"):
        return "running inside the sid root needs root, unshare and chroot"
    return None


def in_sid_root(bundle: Path, *args: str) -> list[str]:
    """A command that runs the bundle's executable chrooted into the sid root (which has no
    Python): the bundle bind-mounted on /mnt, the host's /dev/shm (the ring) and a /proc, in a
    private mount namespace that ends with the process. exec all the way down: the Popen's pid
    is the server's."""
    script = ('mount --bind "$1" "$2/mnt" && mount --bind /dev/shm "$2/dev/shm" && '
              'mount -t proc proc "$2/proc" && r="$2" && exe="$3" && shift 3 && '
              'exec chroot "$r" "/mnt/$exe" "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(bundle), str(SID_ROOT), executable(bundle).name, *args]


def wait_listening(port: int, proc: subprocess.Popen, within: float) -> socket.socket:
    """A connection to `port` once it accepts; raises if the process ends first."""
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"the server exited ({proc.returncode}) before listening:\n{out}")
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port} after {within} s") from None
            time.sleep(0.01)


def listen(sock: socket.socket, seconds: float, token: str | None = None,
           until_audio: bool = False) -> dict:
    """Say hello (audio and markers) and gather for `seconds`: status, audio, markers."""
    hello = {"type": "hello", "id": "hello", "v": 1, "client": "test", "want_audio": True, "markers": True}
    if token:
        hello["token"] = token
    sock.sendall(frame(encode(hello)))
    got: dict = {"status": None, "audio": [], "markers": [], "first_audio_at": None}
    reader, deadline = FrameReader(), time.monotonic() + seconds
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not data:
            break
        for payload in reader.feed(data):
            msg = msgpack.unpackb(payload)
            if msg.get("type") == "audio":
                got["first_audio_at"] = got["first_audio_at"] or time.monotonic()
                got["audio"].append(msg)
            elif msg.get("type") == "marker":
                got["markers"].append(msg)
            elif msg.get("id") == "hello":
                got["status"] = msg
        if until_audio and got["audio"]:
            break
    return got


def hello_reply(port: int, token: str | None) -> dict:
    """The reply to a hello (with `token`, if given) on a new framed-TCP connection."""
    hello = {"type": "hello", "id": "hello", "v": 1, "client": "test"} | ({"token": token} if token else {})
    reader = FrameReader()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(frame(encode(hello)))
        while True:
            data = sock.recv(1 << 16)
            assert data, "the server closed the connection without answering the hello"
            for payload in reader.feed(data):
                msg = msgpack.unpackb(payload)
                if msg.get("id") == "hello":
                    return msg


def check_token_is_private(pid: int, port: int) -> None:
    """A launched server's token is in its environment (SCOREWRIGHT_TOKEN: only its user can
    read /proc/PID/environ), not on its command line (anyone can read /proc/PID/cmdline); it
    refuses a client without the token and serves one with it."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    environ = dict(v.split(b"=", 1) for v in variables if b"=" in v)
    token = environ.get(b"SCOREWRIGHT_TOKEN", b"")
    assert len(token) == 32 and token not in cmdline and b"--token" not in cmdline, (cmdline, token)
    refused = hello_reply(port, None)
    assert refused["type"] == "error" and refused["code"] == "unauthorized", refused
    assert hello_reply(port, token.decode())["type"] == "status"


def alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def kill_game_and_time_its_server(game: subprocess.Popen, server: int) -> float:
    """SIGKILL the game that launched `server`; seconds until the server was gone (it must stop
    by itself through --parent-pid; asserted within 5 s)."""
    game.kill()
    game.wait()
    killed = time.monotonic()
    while alive(server) and time.monotonic() - killed < 5:
        time.sleep(0.05)
    assert not alive(server), "the server outlived the game that started it"
    return time.monotonic() - killed
