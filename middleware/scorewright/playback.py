"""Play a WAV file on the sound card with whatever player the system has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# (command, args before the file); first one found on PATH wins.
_PLAYERS = [("afplay", []), ("pw-play", []), ("paplay", []), ("aplay", ["-q"]),
            ("ffplay", ["-nodisp", "-autoexit", "-loglevel", "quiet"])]


class Player:
    """A running playback; `wait()` blocks until it ends, `stop()` ends it."""

    def __init__(self, proc: subprocess.Popen | None, name: str) -> None:
        self.proc, self.name = proc, name

    def wait(self) -> bool:
        """True when playback finished normally."""
        return self.proc.wait() == 0 if self.proc else True

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
