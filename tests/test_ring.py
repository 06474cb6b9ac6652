import hashlib
import multiprocessing as mp
import os
import stat
import time
import uuid

import numpy as np
import pytest

from scorewright.transport.shm import HEADER_BYTES, MAGIC, RingError, RingReader, RingWriter

BLOCK = 1920
SECONDS = 12
N_BLOCKS = SECONDS * 48000 // BLOCK


def _block(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.uniform(-1, 1, (BLOCK, 2)).astype(np.float32)


def _writer(session: str, ready, done) -> None:
    ring = RingWriter(session, capacity_frames=BLOCK * 8)
    ready.set()
    digest = hashlib.sha256()
    i = 0
    deadline = time.monotonic() + 120
    while i < N_BLOCKS and time.monotonic() < deadline:
        block, done_ = _block(i), 0
        while done_ < BLOCK and time.monotonic() < deadline:   # a full ring takes part of it:
            done_ += ring.write(block[done_:])                 # offer the rest again
        digest.update(block.tobytes())
        i += 1
    done.put(digest.hexdigest())
    while ring.read_pos < ring.write_pos and time.monotonic() < deadline:   # let the reader finish
        time.sleep(0.001)
    ring.close()


def test_two_processes_exchange_audio_without_loss_or_tearing():
    session = f"t{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_writer, args=(session, ready, done))
    proc.start()
    assert ready.wait(30)
    reader = RingReader(session, latest=False)     # from the first sample: compare everything
    digest, received = hashlib.sha256(), 0
    deadline = time.monotonic() + 120
    while received < N_BLOCKS * BLOCK:
        assert time.monotonic() < deadline and (proc.is_alive() or reader.available), "writer stopped"
        chunk = reader.read(1000)          # odd sizes: wrap-around and partial blocks
        if not len(chunk):
            time.sleep(0.0005)
        digest.update(chunk.tobytes())
        received += len(chunk)
    reader.close()
    proc.join(30)
    assert received == SECONDS * 48000
    assert done.get(timeout=5) == digest.hexdigest()


def test_stalled_reader_is_never_overwritten(tmp_path):
    w = RingWriter(path=tmp_path / "ring", capacity_frames=BLOCK * 4)
    r = RingReader(path=tmp_path / "ring")
    for i in range(4):
        assert w.write(_block(i)) == BLOCK
    assert w.write(_block(99)) == 0            # full: dropped, not overwritten
    assert w.dropped == BLOCK
    got = r.read(BLOCK * 4)
    assert np.array_equal(got, np.concatenate([_block(i) for i in range(4)]))
    w.close()


def test_empty_ring_gives_silence_and_counts_an_underrun(tmp_path):
    w = RingWriter(path=tmp_path / "ring", capacity_frames=BLOCK * 4)
    r = RingReader(path=tmp_path / "ring")
    w.write(_block(0)[:100])
    out = r.read(BLOCK, pad=True)
    assert out.shape == (BLOCK, 2)
    assert np.array_equal(out[:100], _block(0)[:100]) and not out[100:].any()
    assert r.underruns == 1
    assert r.read(10).shape == (0, 2)
    w.close()


def test_header_layout_and_permissions(tmp_path):
    path = tmp_path / "ring"
    w = RingWriter(path=path, capacity_frames=480)
    w.write(np.ones((10, 2), np.float32))
    raw = path.read_bytes()
    assert raw[:8] == MAGIC
    version, sr, ch, cap = np.frombuffer(raw[8:24], "<u4")
    assert (version, sr, ch, cap) == (1, 48000, 2, 480)
    write_pos, read_pos, heartbeat = np.frombuffer(raw[24:48], "<u8")
    assert (write_pos, read_pos) == (10, 0) and heartbeat > 0
    assert np.frombuffer(raw[48:52], "<u4")[0] & 1
    assert len(raw) == HEADER_BYTES + 480 * 2 * 4
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    w.close()
    assert not path.exists()


def test_reader_resyncs_to_latest(tmp_path):
    w = RingWriter(path=tmp_path / "ring", capacity_frames=BLOCK * 4)
    r = RingReader(path=tmp_path / "ring")
    for i in range(3):
        w.write(_block(i))
    r.skip_to_latest(keep=BLOCK)
    assert np.array_equal(r.read(BLOCK), _block(2))
    w.close()


def test_missing_ring_says_what_to_do():
    with pytest.raises(RingError, match="scorewright serve"):
        RingReader(f"nope-{uuid.uuid4().hex[:6]}")


def test_live_ring_is_refused_and_dead_ones_replaced(tmp_path):
    from scorewright.transport.shm import RingInUse
    path = tmp_path / "ring"
    live = RingWriter(path=path, capacity_frames=480)
    with pytest.raises(RingInUse, match="--ring"):
        RingWriter(path=path, capacity_frames=480)
    live._m.u32[13] = 2 ** 31 - 2            # its process is gone (SIGKILL): replaced at once
    second = RingWriter(path=path, capacity_frames=480)
    assert second.write_pos == 0
    second._m.u32[13] = 0                    # writer unknown...
    second._m.u64[5] = 0                     # ...and its heartbeat stopped long ago: stale
    third = RingWriter(path=path, capacity_frames=480)
    third.close()


def test_restarted_reader_starts_at_the_newest_audio(tmp_path):
    w = RingWriter(path=tmp_path / "ring", capacity_frames=BLOCK * 8)
    for i in range(5):
        w.write(_block(i))
    first = RingReader(path=tmp_path / "ring", latest=False)
    first.read(BLOCK)                     # ... then this reader process dies mid-stream
    del first
    second = RingReader(path=tmp_path / "ring", keep=BLOCK)
    assert np.array_equal(second.read(BLOCK), _block(4))   # no stale audio
    w.write(_block(5))
    assert np.array_equal(second.read(BLOCK), _block(5))
    w.close()


def test_reader_reattaches_when_a_new_server_replaces_a_dead_ring(tmp_path):
    path = tmp_path / "ring"
    dead = RingWriter(path=path, capacity_frames=BLOCK * 8)
    reader = RingReader(path=path)
    dead.write(_block(0))
    assert np.array_equal(reader.read(BLOCK), _block(0))
    dead._m.u64[5] = 0                    # the server was SIGKILLed: heartbeat stops
    fresh = RingWriter(path=path, capacity_frames=BLOCK * 8)   # its successor replaces the file
    got = []

    def produce():
        for i in range(1, 4):
            time.sleep(0.05)
            fresh.write(_block(i))
    import threading
    t = threading.Thread(target=produce)
    t.start()
    for block in reader.blocks(timeout=2.0):
        got.append(block)
        if len(got) == 3:
            break
    t.join()
    assert reader.reattached == 1
    assert all(np.array_equal(g, _block(i + 1)) for i, g in enumerate(got))
    fresh.close()


def test_rings_that_dead_writers_left_are_removed_and_no_others(tmp_path):
    """remove_stale_rings (what `serve` runs at start; on Windows killed servers leave their
    rings in %TEMP%): a ring whose writer is gone and quiet goes; a live one, one whose writer
    is unknown or wrote recently, and files that are not rings stay."""
    from scorewright.transport.shm import remove_stale_rings

    def ring(name: str, pid: int, heartbeat: int | None) -> RingWriter:
        w = RingWriter(path=tmp_path / f"scorewright-{name}", capacity_frames=480)
        w._m.u32[13] = pid
        if heartbeat is not None:
            w._m.u64[5] = heartbeat
        return w

    dead = 2 ** 31 - 2                                   # no such process
    for w in (ring("killed", dead, 0), ring("unknown", 0, 0), ring("just-killed", dead, None)):
        w.close(unlink=False)
    live = ring("live", os.getpid(), 0)                  # ours, even though quiet
    (tmp_path / "scorewright-notes.txt").write_text("not a ring")
    (tmp_path / "other-killed").write_bytes((tmp_path / "scorewright-killed").read_bytes())
    assert remove_stale_rings(tmp_path) == [tmp_path / "scorewright-killed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other-killed", "scorewright-just-killed", "scorewright-live", "scorewright-notes.txt",
        "scorewright-unknown"]
    live.close()
