"""`serve --parent-pid PID`: notice that the process that launched the server (a game) is gone,
so a crashed or killed game leaves no orphan server behind.

POSIX: when PID is our own parent, its death is seen as a change of `os.getppid()`. Any other
PID is held, on Linux, by a pidfd opened at start (it becomes readable when that process ends,
and a new process that reuses the PID cannot fool it); elsewhere (macOS) it is probed with
`os.kill(pid, 0)`, which a reused PID can fool. Windows: a handle opened at start (which also
keeps the PID from being reused) is waited on with a zero timeout.

Linux's prctl(PR_SET_PDEATHSIG) is not used: it fires when the parent *thread* that started
the server ends, which stops a server that a game launched from a worker thread.
"""

from __future__ import annotations

import os
import select
import sys

_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_SYNCHRONIZE = 0x00100000
_WAIT_TIMEOUT = 0x102                   # WaitForSingleObject(handle, 0): still running
_ERROR_ACCESS_DENIED = 5


def pid_alive(pid: int) -> bool:
    """Is a process with this id running here? (Someone else's counts. On Windows it is asked
    through a handle: os.kill there would end the process, or send it a Ctrl-C.)"""
    if pid <= 0:
        return False
    if sys.platform != "win32":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:                   # PermissionError: exists, owned by someone else
            return True
        return True
    handle, err = _open_process(pid)
    if not handle:
        return err == _ERROR_ACCESS_DENIED
    try:
        return _windows_alive(handle)
    finally:
        _close_process(handle)


class ParentWatch:
    """`alive()` is True while the process `pid` runs."""

    def __init__(self, pid: int) -> None:
        if pid <= 0:
            raise ValueError(f"--parent-pid {pid}: give the launching process's id (a positive number)")
        self.pid = pid
        self._handle = None
        self._pidfd: int | None = None
        self._is_parent = False
        if sys.platform == "win32":
            self._handle = _open_windows(pid)
        else:
            self._is_parent = os.getppid() == pid
            if not self._is_parent:
                self._pidfd = _open_pidfd(pid)
        if not self.alive():
            raise ValueError(f"--parent-pid {pid}: no such process (it has already exited?)")

    def alive(self) -> bool:
        if sys.platform == "win32":
            return _windows_alive(self._handle)
        if self._is_parent:
            return os.getppid() == self.pid
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], 0)
            return not readable
        return pid_alive(self.pid)

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._handle:
            _close_process(self._handle)
            self._handle = None


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid` (Linux 5.3+); None elsewhere, on older kernels, or when it is gone."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:                       # gone (the probe then says so), or no pidfds here
        return None


def _open_windows(pid: int):
    handle, _ = _open_process(pid)
    if not handle:
        raise ValueError(f"--parent-pid {pid}: no such process (or no right to query it)")
    return handle


def _open_process(pid: int) -> tuple[int | None, int]:
    """(a handle that can be waited on, or None; the Windows error code when None)."""
    import ctypes
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = ctypes.c_void_p
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION | _SYNCHRONIZE, False, pid)
    return handle, 0 if handle else ctypes.get_last_error()  # type: ignore[attr-defined]


def _close_process(handle) -> None:
    import ctypes
    ctypes.windll.kernel32.CloseHandle(ctypes.c_void_p(handle))  # type: ignore[attr-defined]


def _windows_alive(handle) -> bool:
    """The process handle is not signalled yet: exact, where an exit code of 259 (STILL_ACTIVE)
    would look alive forever; a failed wait counts as gone, as a failed query did. Not run in
    CI (no Windows machine)."""
    import ctypes
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    kernel32.WaitForSingleObject.restype = ctypes.c_uint32
    return kernel32.WaitForSingleObject(ctypes.c_void_p(handle), 0) == _WAIT_TIMEOUT
