"""Godot 4 for the addon's tests and bench: the runtime from scripts/godot4.sh, and servers on
fixed ports (so one can be killed and restarted where a client expects it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from scorewright.transport import free_ports

ROOT = Path(__file__).resolve().parents[1]
GODOT4 = ROOT / "scripts" / "godot4.sh"
PROJECT = ROOT / "game_bindings" / "godot"
GET_GODOT = "scripts/godot4.sh (builds Debian sid's Godot 4 into ~/.cache once, ~650 MB, as root)"


def godot_version(build: bool) -> tuple[str | None, str]:
    """(version, output): build=True builds the runtime if missing; otherwise only looks."""
    r = subprocess.run([str(GODOT4)] if build else [str(GODOT4), "--check"],
                       capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    return (r.stdout.strip() if r.returncode == 0 else None), out


def godot_command(*args: str) -> list[str]:
    """Headless Godot on the addon's project, with these arguments."""
    return [str(GODOT4), "--headless", "--path", str(PROJECT), *args]


def import_project() -> None:
    """Build the project's .godot cache (global class names); scripts fail to parse without it."""
    r = subprocess.run(godot_command("--import"), capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"godot --import failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")


@dataclass
class FixedServer:
    """`scorewright serve` on fixed ports and ring name; start() again after kill() to restart it
    where clients expect it. stop() ends whatever is running (SIGTERM, then SIGKILL)."""

    map_path: Path
    extra: list[str] = field(default_factory=list)
    ring: str = field(default_factory=lambda: f"test-godot-{uuid.uuid4().hex[:8]}")
    ports: list[int] = field(default_factory=lambda: free_ports(3))
    proc: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)

    @property
    def tcp(self) -> int:
        return self.ports[2]

    def start(self, within: float = 60.0) -> float:
        """Start and wait until the framed-TCP port accepts; returns that moment (Unix time)."""
        control, audio, tcp = self.ports
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scorewright.cli", "--log-level", "warning", "serve", str(self.map_path),
             "--control-port", str(control), "--audio-port", str(audio), "--tcp-port", str(tcp),
             "--web-port", "0",
             "--ring", self.ring, *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "200"})
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited early:\n" + self._collect())
            try:
                socket.create_connection(("127.0.0.1", tcp), timeout=0.5).close()
                return time.time()
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"serve did not listen on {tcp} within {within} s")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._collect()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._collect()

    def _collect(self) -> str:
        if self.proc is not None and self.proc.stdout is not None and self.proc.poll() is not None:
            self.log.append(self.proc.stdout.read())
            self.proc.stdout.close()
        return "".join(self.log)


def kill_launched(pid_file: Path, ring: str) -> None:
    """Stop a server the addon started (pid written by the Godot scene), if it still runs and is
    that server (its command line names our ring), so a reused pid is never touched."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if pid > 0 and ring in cmdline:
        os.kill(pid, signal.SIGKILL)
