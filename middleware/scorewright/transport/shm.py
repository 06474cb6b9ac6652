"""Shared-memory SPSC audio ring (one writer: the middleware; one reader: the engine plugin).

Layout (little-endian), documented byte by byte in docs/protocol.md:

    0  magic  b"SWRING1\\0"      24 u64 write_pos (sample pairs, monotonic)
    8  u32 version               32 u64 read_pos
    12 u32 sample_rate           40 u64 heartbeat_ns (writer's wall clock, Unix ns)
    16 u32 channels              48 u32 flags (bit 0: writer open, bit 1: writer closed)
    20 u32 capacity_frames       52 u32 writer_pid
                                 56 u64 dropped (pairs the writer dropped: the ring was full)
                                 64.. float32 data

A ring position p (of audio written after the last drop) is stream position p + dropped: the
position `pos` that replies and markers give. A reader that keeps the ring drained sees no drops.

Positions are written with single aligned 8-byte stores, the data before the position that
publishes it, so a reader never sees a torn frame (x86-64/ARM64 ordering of aligned stores on
one cache line is relied on for the header; data copies happen-before through the position).
"""

from __future__ import annotations

import mmap
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..audio import CHANNELS, SAMPLE_RATE
from ..parent import pid_alive
from .base import Inbox, Outgoing, Transport

MAGIC = b"SWRING1\0"
VERSION = 1
HEADER_BYTES = 64
FLAG_OPEN, FLAG_CLOSED = 1, 2
# u64 slots in the header
_WRITE, _READ, _HEARTBEAT, _DROPPED = 3, 4, 5, 7
_FLAGS_U32 = 12
_PID_U32 = 13


def ring_folder() -> Path:
    """Where rings live: /dev/shm on Linux; the temp dir elsewhere."""
    return Path("/dev/shm") if sys.platform.startswith("linux") and Path("/dev/shm").is_dir() \
        else Path(tempfile.gettempdir())


def ring_path(session: str) -> Path:
    """/dev/shm/scorewright-<session> on Linux; a temp-dir file elsewhere."""
    if not session.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"bad ring session name {session!r}: use letters, digits, '-' and '_'")
    return ring_folder() / f"scorewright-{session}"


class _Mapped:
    def __init__(self, path: Path, size: int, create: bool) -> None:
        self.path = path
        if create:   # a new file (new inode): readers of a dead ring keep their old mapping
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.ftruncate(fd, size)
        else:
            fd = os.open(path, os.O_RDWR)
            size = os.fstat(fd).st_size
        self.inode = os.fstat(fd).st_ino
        try:
            self.mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.u64 = np.frombuffer(self.mm, dtype="<u8", count=8)
        self.u32 = np.frombuffer(self.mm, dtype="<u4", count=16)

    def close(self) -> None:
        del self.u64, self.u32
        if hasattr(self, "data"):
            del self.data
        self.mm.close()


STALE_AFTER_S = 2.0      # a ring whose writer has not written for this long is abandoned


class RingError(RuntimeError):
    """The ring file is missing or is not a Scorewright ring."""


class RingInUse(RuntimeError):
    """Another live writer owns the ring file."""


def _check_ring_path(path: Path) -> None:
    """Something that is not a regular file at the ring's path (a folder, a FIFO, a link) is
    never opened, read or replaced: the server says so and stops."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise RingError(f"{path} exists and is not a ring file (a folder, pipe or link); remove it "
                        "or pick another name with --ring NAME")


def _header(path: Path) -> tuple[int, int, int] | None:
    """(heartbeat_ns, flags, writer_pid) of the ring file at `path`; None if it is not one."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError:
        return None
    if len(head) < HEADER_BYTES or head[:8] != MAGIC:
        return None
    flags, pid = (int(x) for x in np.frombuffer(head, "<u4")[[_FLAGS_U32, _PID_U32]])
    return int(np.frombuffer(head, "<u8")[_HEARTBEAT]), flags, pid


def _stale(heartbeat_ns: int) -> bool:
    return (time.time_ns() - heartbeat_ns) / 1e9 >= STALE_AFTER_S


def _live_writer(path: Path) -> bool:
    """True when `path` is a ring whose writer is open and wrote within STALE_AFTER_S (a killed
    writer's ring is stale at once)."""
    header = _header(path)
    if header is None:
        return False
    heartbeat, flags, pid = header
    if not flags & FLAG_OPEN or flags & FLAG_CLOSED or _stale(heartbeat):
        return False
    return pid == 0 or pid_alive(pid)


def remove_stale_rings(folder: Path | None = None) -> list[Path]:
    """Remove the ring files (scorewright-*) in `folder` (where rings live) that dead writers
    left behind: a Scorewright ring whose writer's process is gone and whose heartbeat stopped.
    (On Windows the engines stop the server with TerminateProcess, so the server never removes
    its ring in %TEMP% itself.) Returns the files removed."""
    removed = []
    for path in sorted((folder or ring_folder()).glob("scorewright-*")):
        header = _header(path)
        if header is None or header[2] == 0 or not _stale(header[0]) or pid_alive(header[2]):
            continue
        try:
            path.unlink()
        except OSError:          # another user's, or still mapped by a reader (Windows)
            continue
        removed.append(path)
    return removed


class RingWriter:
    """Creates the ring and appends audio; never overwrites audio the reader has not read.
    A stale ring file left by a dead writer is replaced; a live one is refused (RingInUse)."""

    def __init__(self, session: str = "default", capacity_frames: int = SAMPLE_RATE,
                 sample_rate: int = SAMPLE_RATE, channels: int = CHANNELS,
                 path: Path | None = None) -> None:
        self.path = path or ring_path(session)
        _check_ring_path(self.path)
        if _live_writer(self.path):
            raise RingInUse(f"the audio ring {self.path} belongs to a running server; "
                            "stop it or pick another name with --ring NAME")
        self.capacity = capacity_frames
        self.channels = channels
        self._m = _Mapped(self.path, HEADER_BYTES + capacity_frames * channels * 4, create=True)
        m = self._m
        m.mm[0:8] = MAGIC
        m.u32[2], m.u32[3], m.u32[4], m.u32[5] = VERSION, sample_rate, channels, capacity_frames
        m.data = np.frombuffer(m.mm, dtype="<f4", offset=HEADER_BYTES).reshape(capacity_frames, channels)
        m.u32[_PID_U32] = os.getpid()
        m.u32[_FLAGS_U32] = FLAG_OPEN
        self.heartbeat()

    @property
    def dropped(self) -> int:
        """Sample pairs dropped because the reader had not made room (or there was none)."""
        return int(self._m.u64[_DROPPED])

    @property
    def write_pos(self) -> int:
        return int(self._m.u64[_WRITE])

    @property
    def read_pos(self) -> int:
        return int(self._m.u64[_READ])

    def heartbeat(self) -> None:
        self._m.u64[_HEARTBEAT] = time.time_ns()

    def write(self, pcm: np.ndarray) -> int:
        """Append [n, channels] float32; returns pairs written (the rest is dropped, counted)."""
        m = self._m
        w = int(m.u64[_WRITE])
        free = self.capacity - (w - int(m.u64[_READ]))
        n = min(len(pcm), max(free, 0))
        start = w % self.capacity
        first = min(n, self.capacity - start)
        m.data[start:start + first] = pcm[:first]
        m.data[:n - first] = pcm[first:n]
        if n < len(pcm):
            m.u64[_DROPPED] += len(pcm) - n
        m.u64[_WRITE] = w + n
        self.heartbeat()
        return n

    def skip(self, n: int) -> None:
        """The stream moved on by `n` pairs that were never written (the server skipped frames
        after a stall): ring positions keep mapping to stream positions."""
        self._m.u64[_DROPPED] += n

    def close(self, unlink: bool = True) -> None:
        self._m.u32[_FLAGS_U32] = FLAG_CLOSED
        self._m.close()
        if unlink:
            self.path.unlink(missing_ok=True)


class RingReader:
    """Reads audio from a ring created by `scorewright serve` (Python side of the plugins).

    A new reader starts at the newest audio (`latest=True`, keeping `keep` pairs), so a reader
    that restarts never plays stale sound. When the server dies and a new one creates the ring
    again, `blocks()` notices (heartbeat, new file) and reattaches on its own.
    """

    def __init__(self, session: str = "default", path: Path | str | None = None,
                 latest: bool = True, keep: int = 0) -> None:
        self.path = Path(path) if path else ring_path(session)
        self.session, self.keep = session, keep
        self.underruns = 0
        self.reattached = 0
        self._attach()
        if latest:
            self.skip_to_latest(keep)

    def _attach(self) -> None:
        if not self.path.exists():
            raise RingError(f"no audio ring at {self.path}: is `scorewright serve` running "
                            f"with --ring {self.session}?")
        self._m = _Mapped(self.path, 0, create=False)
        m = self._m
        if bytes(m.mm[0:8]) != MAGIC or int(m.u32[2]) != VERSION:
            raise RingError(f"{self.path} is not a Scorewright ring (version {VERSION})")
        self.sample_rate, self.channels, self.capacity = int(m.u32[3]), int(m.u32[4]), int(m.u32[5])
        m.data = np.frombuffer(m.mm, dtype="<f4", offset=HEADER_BYTES).reshape(self.capacity,
                                                                                self.channels)

    def replaced(self) -> bool:
        """True when the ring file now is another ring (a restarted server)."""
        try:
            return os.stat(self.path).st_ino != self._m.inode
        except OSError:
            return False

    def reattach(self) -> bool:
        """Attach to the ring the (restarted) server created; True if it did."""
        if not self.replaced():
            return False
        try:
            old = self._m
            self._attach()
            old.close()
        except (RingError, OSError, ValueError):
            return False
        self.skip_to_latest(self.keep)
        self.reattached += 1
        return True
    @property
    def available(self) -> int:
        return int(self._m.u64[_WRITE]) - int(self._m.u64[_READ])

    @property
    def write_pos(self) -> int:
        """Sample pairs the writer has produced so far."""
        return int(self._m.u64[_WRITE])

    @property
    def read_pos(self) -> int:
        """Ring position of the next sample read."""
        return int(self._m.u64[_READ])

    @property
    def stream_pos(self) -> int:
        """Stream position (what replies' and markers' `pos` count) of the next sample read."""
        return int(self._m.u64[_READ]) + int(self._m.u64[_DROPPED])

    @property
    def writer_closed(self) -> bool:
        return bool(int(self._m.u32[_FLAGS_U32]) & FLAG_CLOSED)

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the writer last wrote."""
        return (time.time_ns() - int(self._m.u64[_HEARTBEAT])) / 1e9

    def skip_to_latest(self, keep: int = 0) -> None:
        """Drop old audio, keeping the newest `keep` pairs (resync after a stall)."""
        w = int(self._m.u64[_WRITE])
        self._m.u64[_READ] = max(int(self._m.u64[_READ]), w - keep)

    def read(self, n: int, pad: bool = False) -> np.ndarray:
        """Up to n pairs (fewer if not available). With pad=True, always n pairs: missing audio
        is silence and counts as an underrun (what an audio callback wants)."""
        m = self._m
        r = int(m.u64[_READ])
        k = min(n, int(m.u64[_WRITE]) - r)
        start = r % self.capacity
        first = min(k, self.capacity - start)
        out = np.empty((k, self.channels), dtype=np.float32)
        out[:first] = m.data[start:start + first]
        out[first:] = m.data[:k - first]
        m.u64[_READ] = r + k
        if pad and k < n:
            self.underruns += 1
            out = np.concatenate([out, np.zeros((n - k, self.channels), dtype=np.float32)])
        return out

    def blocks(self, block: int = 1920, timeout: float | None = None, poll: float = 0.005):
        """Yield [block, 2] arrays as the writer produces them, across server restarts (the ring
        of a restarted server is picked up on its own). Waits for audio as long as it takes, or
        raises TimeoutError after `timeout` seconds without any."""
        waited = 0.0
        while True:
            if self.available >= block:
                waited = 0.0
                yield self.read(block)
                continue
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"no audio in the ring {self.path} for {timeout:g} s: "
                                   "is `scorewright serve` running?")
            if self.heartbeat_age > 0.5 or self.writer_closed:
                self.reattach()
            time.sleep(poll)
            waited += poll

    def close(self) -> None:
        self._m.close()

    def __enter__(self) -> RingReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RingTransport(Transport):
    """The shared-memory ring as a transport: audio out, nothing in. Frames the stream skipped
    (after a stall) are counted in the ring's `dropped`, so ring positions stay stream positions."""

    name = "ring"

    def __init__(self, session: str, seconds: float) -> None:
        self.writer = RingWriter(session, int(seconds * SAMPLE_RATE))
        self.path = self.writer.path
        self._next_seq: int | None = None

    def describe(self) -> str:
        return f"ring {self.path}"

    def publish(self, out: Outgoing) -> None:
        if self._next_seq is not None and out.seq > self._next_seq:
            self.writer.skip((out.seq - self._next_seq) * len(out.pcm))
        self._next_seq = out.seq + 1
        self.writer.write(out.pcm)

    def start(self, inbox: Inbox) -> None:
        """Nothing comes in through the ring."""

    def stop(self) -> None:
        self.writer.close(unlink=True)

    def push(self, payload: bytes) -> None:
        """The ring carries audio only."""

    def stats(self) -> dict:
        return {"dropped": self.writer.dropped}
