"""A take to WAV: `scorewright render` in a child process (the same audio as its replay), one
at a time (another export is refused with `busy` while one runs), at low priority so the live
stream keeps its CPU, and stopped after EXPORT_TIMEOUT_S."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..protocol import ProtocolError, encode
from ..transport.base import Peer

log = logging.getLogger(__name__)
EXPORT_TIMEOUT_S = 30 * 60           # a render that takes longer is stopped (the longest take is 30 min)


def render_command(map_path: Path, take: Path, out: Path, seed: int, backend: str) -> list[str]:
    """The render's command line: `python -m scorewright.cli …`, or in a `scorewright bundle`
    executable (frozen: sys.executable is the bundle's `scorewright` command) that itself."""
    if getattr(sys, "frozen", False):
        head = [sys.executable]
    else:
        head = [sys.executable, "-m", "scorewright.cli"]
    return [*head, "--log-level", "warning", "render", str(map_path), "--events", str(take),
            "--out", str(out), "--seed", str(seed), "--backend", backend]


class Exporter:
    """Runs one render at a time in a worker thread; the page hears `studio.exported` or an
    `export_failed` error when it ends."""

    def __init__(self, timeout_s: float = EXPORT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.running: str | None = None          # the take being rendered
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._closed = False

    def start(self, peer: Peer, cmd: list[str], take: Path, out: Path) -> None:
        """Start rendering; ProtocolError `busy` while another export runs."""
        with self._lock:
            if self.running is not None:
                raise ProtocolError("busy", f"an export is running ({self.running}); wait for "
                                    "studio.exported, then export again")
            self.running = take.name
        self._thread = threading.Thread(target=self._run, args=(peer, cmd, take, out),
                                        name="sw-export", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running export (if any) to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop a running render (the server is stopping: it leaves no process behind)."""
        with self._lock:
            self._closed = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _run(self, peer: Peer, cmd: list[str], take: Path, out: Path) -> None:
        try:
            problem = self._render(cmd)
        except Exception as e:               # never let an export end the thread silently
            log.exception("studio export of %s failed", take.name)
            problem = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self.running = None
        if problem is None:
            peer.reply(encode({"type": "studio.exported", "take": take.name, "wav": out.name,
                               "url": f"/files/{out.name}"}))
        else:
            peer.reply(encode({"type": "error", "code": "export_failed",
                               "message": f"{take.name}: {problem}"}))

    def _render(self, cmd: list[str]) -> str | None:
        """Run it; None when it worked, else what went wrong (the end of its error output)."""
        flags = getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)
        with tempfile.TemporaryFile("w+b") as err:          # its warnings may be many: kept on disk
            with self._lock:
                if self._closed:
                    return "the server is stopping"
                try:
                    proc = self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                                         stdout=subprocess.DEVNULL, stderr=err,
                                                         creationflags=flags)
                except OSError as e:
                    return f"cannot start `scorewright render` ({e})"
            if hasattr(os, "setpriority"):
                try:
                    os.setpriority(os.PRIO_PROCESS, proc.pid, 10)
                except OSError:
                    pass
            try:
                code = proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return (f"the render took longer than {self.timeout_s:g} s and was stopped; render it "
                        f"from a shell: scorewright {' '.join(cmd[cmd.index('render'):])}")
            finally:
                with self._lock:
                    self._proc = None
            if code == 0:
                return None
            err.seek(max(0, err.seek(0, os.SEEK_END) - 500))
            return f"render failed: {err.read().decode('utf-8', 'replace').strip()}"
