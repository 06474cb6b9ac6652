"""Play a WAV file on the sound card with whatever player the system has."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

# (command, args before the file); first one found on PATH wins.
_PLAYERS = [("afplay", []), ("pw-play", []), ("paplay", []), ("aplay", ["-q"]),
            ("ffplay", ["-nodisp", "-autoexit", "-loglevel", "quiet"])]
PLAYER_NAMES = tuple(cmd for cmd, _ in _PLAYERS)


class Player:
    """A running playback; `wait()` blocks until it ends, `stop()` ends it."""

    def __init__(self, proc: subprocess.Popen | None, name: str) -> None:
        self.proc, self.name = proc, name

    def wait(self) -> bool:
        """True when playback finished normally."""
        return self.proc.wait() == 0 if self.proc else True

    def wait_until(self, deadline: float) -> str | None:
        """Sleep until `deadline` (time.monotonic()), returning at once if the player fails
        meanwhile: then with its last error line (a dead player is noticed when it dies)."""
        remaining = deadline - time.monotonic()
        if self.proc is None:
            time.sleep(max(0.0, remaining))
            return None
        try:
            code = self.proc.wait(max(0.0, remaining))
        except subprocess.TimeoutExpired:
            return None
        if code == 0:                   # finished: keep the pace of the caller's timeline
            time.sleep(max(0.0, deadline - time.monotonic()))
            return None
        err = self.proc.stderr.read() if self.proc.stderr else b""
        lines = err.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"{self.name} exited with code {code} (no sound card?)"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
        if sys.platform == "win32" and self.proc is None:
            import winsound
            winsound.PlaySound(None, 0)


def play(path: Path) -> Player | None:
    """Start playing `path` in the background; None if no player is available."""
    if sys.platform == "win32":
        import winsound
        winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_ASYNC)
        return Player(None, "winsound")
    for cmd, args in _PLAYERS:
        exe = shutil.which(cmd)
        if exe:
            proc = subprocess.Popen([exe, *args, str(path)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return Player(proc, cmd)
    return None
