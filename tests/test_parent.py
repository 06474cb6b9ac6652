"""`serve --parent-pid`'s watch (parent.py), in process: on Linux a PID that is not our own
parent is held by a pidfd, so it sees the process end even before it is reaped (a zombie, which
`kill(pid, 0)` still finds) and cannot be fooled by a new process reusing the PID. The Windows
path (WaitForSingleObject) is not run here."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scorewright.parent import ParentWatch

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfds are Linux's (5.3+)")


def state(pid: int) -> str:
    """The process's state letter in /proc (Z: exited, not yet reaped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_pid_that_is_not_our_parent_is_held_by_a_pidfd():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        watch = ParentWatch(child.pid)
        assert watch._pidfd is not None and watch.alive()
        child.kill()                                   # not reaped: its PID is still taken
        deadline = time.monotonic() + 30
        while watch.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not watch.alive()
        assert state(child.pid) == "Z"                 # kill(pid, 0) would still call it alive
        os.kill(child.pid, 0)
        watch.close()
        assert watch._pidfd is None
    finally:
        child.kill()
        child.wait()


def test_a_gone_or_bad_pid_is_refused():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ValueError, match=f"--parent-pid {child.pid}: no such process"):
        ParentWatch(child.pid)
    with pytest.raises(ValueError, match="a positive number"):
        ParentWatch(0)


def test_our_own_parent_is_watched_through_getppid():
    watch = ParentWatch(os.getppid())
    assert watch._pidfd is None and watch.alive()
    watch.close()
