"""Hostile and careless clients against a live `serve`: every defect found by hand becomes a
test here, with its neighbours (the same kind of input on other messages and transports).
Whatever they send, the stream keeps playing, later frames are not poisoned, and every
collection and buffer a client can grow stays within its budget."""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

import msgpack
import numpy as np
import pytest
import zmq

from scorewright.client import AudioSubscriber, Client, RingReader, ScorewrightError
from scorewright.protocol import FrameReader, encode, frame
from scorewright.transport import free_port, free_ports

from .conftest import MAPS


class Tcp:
    """A framed-TCP client that speaks raw bytes (what a careless engine plugin does)."""

    def __init__(self, port: int, timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:                           # a small window: the server's sends back up sooner
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.reader = FrameReader(limit=16 << 20)

    def send(self, msg: dict) -> None:
        self.sock.sendall(frame(encode(msg)))

    def ask(self, msg: dict) -> dict:
        self.send(msg)
        return self.next()

    def next(self) -> dict:
        while True:
            for payload in self.reader.feed(self.sock.recv(65536)):
                reply = msgpack.unpackb(payload)
                if reply.get("type") not in ("audio", "marker"):
                    return reply

    def close(self) -> None:
        self.sock.close()


def status_is_sane(client: Client) -> dict:
    st = client.get_status()
    assert st["underruns"] == 0 and st["backend_faults"] == 0 and st["bad_frames"] == 0, st
    assert st["tempo"] is not None and np.isfinite(st["tempo"]), st
    assert all(np.isfinite(w) for w in st["weights"].values()), st
    return st


def audio_keeps_flowing(sub: AudioSubscriber, frames: int = 10) -> None:
    for _ in range(frames):
        block = sub.recv(3.0)
        assert block is not None and np.isfinite(block).all()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.fixture
def live(serve):
    srv = serve()
    client = srv.wait_ready()
    sub = AudioSubscriber(srv.audio_addr)
    yield srv, client, sub
    sub.close()
    client.close()


def test_numbers_that_overflow_float32_never_poison_the_stream(live):
    srv, client, sub = live
    for weight in (1e39, float("inf"), -1.0, 1e9):
        with pytest.raises(ScorewrightError) as e:
            client.prompt("strings", weight=weight, wait=True)
        assert e.value.code == "bad_field"
    client.set("danger", 1e308, wait=True)                   # clamped to the param's range
    client.set("danger", -1e308, wait=True)
    tcp = Tcp(srv.tcp)
    assert tcp.ask({"type": "prompt", "text": "x", "weight": 1e39})["code"] == "bad_field"
    assert tcp.ask({"type": "set", "param": "danger", "value": float("nan")})["code"] == "bad_field"
    tcp.close()
    audio_keeps_flowing(sub)
    st = status_is_sane(client)
    assert 0 <= st["params"]["danger"] <= 1


def test_bad_prompt_audio_is_refused_or_tamed(live):
    srv, client, sub = live
    tenth = 4800
    for samples in (np.full((tenth, 2), np.nan), np.full((tenth, 2), np.inf), np.zeros((0, 2)),
                    np.zeros((10, 2))):                  # NaN, infinite, empty, too short
        with pytest.raises(ScorewrightError) as e:
            client.prompt(audio=samples.astype(np.float32), weight=1.0, wait=True)
        assert e.value.code == "bad_field"
    loud = (np.random.default_rng(0).standard_normal((tenth * 4, 2)) * 1e30).astype(np.float32)
    reply = client.prompt(audio=loud, weight=1.0, name="loud", wait=True)     # peak-normalised
    assert reply["pending"] and reply["prompt"] == "prompt:loud"
    deadline = time.monotonic() + 10
    while client.get_status()["prompts_pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "prompt:loud" in client.get_status()["prompts"]
    client.prompt(name="loud", text="x", weight=0, wait=True)                 # and removed again
    audio_keeps_flowing(sub, 25)
    status_is_sane(client)


def test_prompts_are_embedded_off_the_frame_clock(live):
    srv, client, sub = live
    long_prompt = " ".join(["dark ambient drones with distant choir and slow timpani"] * 25)  # ~200 words
    reply = client.prompt(long_prompt, weight=1.0, name="long", wait=True)
    assert reply["pending"] is True                       # answered before the embedding is done
    names = [f"burst{i}" for i in range(12)]              # back-to-back unique prompts
    busy = 0
    for i, name in enumerate(names):
        try:
            client.prompt(f"unique prompt number {i} with words {i * 7}", name=name, wait=True)
        except ScorewrightError as e:
            assert e.code == "busy"
            busy += 1
    assert busy > 0                                       # the embedder's queue is bounded
    start_seq = None
    for _ in range(75):                                   # 3 s of audio while they embed
        assert sub.recv(3.0) is not None
        start_seq = start_seq if start_seq is not None else sub.last_header["seq"]
    assert sub.lost == 0
    deadline = time.monotonic() + 30
    while client.get_status()["prompts_pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    st = status_is_sane(client)
    assert "prompt:long" in st["prompts"]


def test_removed_prompts_are_forgotten():
    """Tens of thousands of add/remove pairs leave nothing behind (no growth of the blend)."""
    from scorewright.session import open_engine
    engine = open_engine(MAPS / "demo.yaml")
    director = engine.director
    known = len(director.embeddings)
    vec = np.ones(director.backend.style_dim, np.float32)
    for i in range(20000):
        director.prompt(f"p{i}", vec, 1.0)
        director.prompt(f"p{i}", None, 0.0)
    assert len(director.embeddings) == known and not director.styles.prompts
    director.prompt("explore", vec, 1.0)                  # a prompt never replaces a map style
    assert "prompt:explore" in director.embeddings and not np.array_equal(director.embeddings["explore"], vec)
    for i in range(15):
        director.prompt(f"keep{i}", vec, 1.0)
    with pytest.raises(Exception, match="at most 16"):
        director.prompt("one more", vec, 1.0)
    assert np.isfinite(director.step().style).all()


def test_clients_that_never_read_stay_within_the_budgets(serve):
    srv = serve()
    client = srv.wait_ready()
    before = rss_mb(srv.proc.pid)
    hogs = []
    for _ in range(31):                                   # audio listeners that never read
        t = Tcp(srv.tcp, rcvbuf=4096)
        t.send({"type": "hello", "want_audio": True, "markers": True})
        hogs.append(t)
    flood = Tcp(srv.tcp, rcvbuf=4096)                     # the 32nd: the last one let in
    extra = [Tcp(srv.tcp) for _ in range(8)]              # past max_clients: refused
    try:
        for _ in range(20000):                             # replies it never reads (~30 MB)
            flood.sock.sendall(frame(encode({"type": "status"})))
    except ConnectionResetError:
        pass                                               # the server closed it: expected
    time.sleep(4.0)                                        # 100 frames of audio for each hog
    st = client.get_status()
    tcp = st["transports"]["tcp"]
    assert tcp["refused"] == 8                             # the 33rd and later were turned away
    assert tcp["limited"] > 10000 or tcp["disconnected"] >= 1   # the flood was held to its rate
    assert tcp["backlog_bytes"] <= 32 << 20
    assert rss_mb(srv.proc.pid) - before < 120, (before, rss_mb(srv.proc.pid))
    assert st["underruns"] == 0
    for t in hogs + extra:
        t.close()
    flood.close()
    assert client.ping()["type"] == "ok"


def test_queued_bytes_are_budgeted_per_client_and_in_total():
    """Audio is dropped past half a client's budget or past the transport's total; a client
    whose unread replies pass its whole budget is closed."""
    from scorewright.transport.base import Budgets
    from scorewright.transport.tcp import TcpConnection, TcpTransport
    budgets = Budgets(client_backlog_bytes=64 << 10, total_backlog_bytes=96 << 10)
    transport = TcpTransport("127.0.0.1", free_port(), budgets)
    listener = socket.create_server(("127.0.0.1", 0))
    pairs, conns = [], []
    for _ in range(3):                                     # clients that never read
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(listener.getsockname())
        server_side, _ = listener.accept()
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        pairs.append((server_side, client))
        conns.append(TcpConnection(server_side, ("test", 0), transport))
    audio = b"a" * 15000                                  # about one frame of audio
    for _ in range(20):
        for c in conns:
            c.send(audio, droppable=True)
    assert all(c.backlog <= 32 << 10 for c in conns)       # half the client's budget
    assert transport.backlog <= 96 << 10 and all(c.dropped_audio for c in conns)
    assert not any(c.closed for c in conns)                # dropping audio closes nothing
    for _ in range(10):
        conns[0].send(b"r" * 10000)                        # replies it does not read
    assert conns[0].closed and "stopped reading" in conns[0].close_reason
    assert transport.backlog <= 96 << 10
    for a, b in pairs:
        a.close()
        b.close()
    listener.close()
    transport.stop()


def test_large_frames_before_authentication_are_refused(serve):
    srv = serve(extra=["--token", "t0k"])
    srv.wait_ready(token="t0k").close()
    t = Tcp(srv.tcp)
    t.sock.sendall(struct.pack("<I", 500_000) + b"x" * 1000)      # a 500 kB frame before hello
    reply = t.next()
    assert reply["code"] == "too_large" and "4096" in reply["message"]
    assert t.sock.recv(100) == b""                                  # and the connection is closed
    t.close()
    t = Tcp(srv.tcp)                                                # after hello, 1 MiB is fine
    assert t.ask({"type": "hello", "token": "t0k"})["type"] == "status"
    assert t.ask({"type": "prompt", "text": "y" * 1500})["type"] == "ok"
    t.close()


def test_zmq_frames_multipart_and_size(live):
    srv, client, sub = live
    ctx = zmq.Context.instance()
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(srv.control_addr)
    d.send_multipart([b"a" * 1000] * 5 + [encode({"type": "ping"})])      # a many-frame message
    assert d.poll(3000)
    reply = d.recv_multipart()
    assert len(reply) == 1 and msgpack.unpackb(reply[0])["code"] == "bad_message"   # not echoed
    d.send(encode({"type": "prompt", "text": "z" * 100, "name": "x" * ((1 << 20) + 10)}))
    assert d.poll(3000)
    assert msgpack.unpackb(d.recv())["code"] == "too_large"         # over the limit: a reply
    d.send(encode({"type": "ping", "v": True}))
    assert d.poll(3000) and msgpack.unpackb(d.recv())["code"] == "bad_version"
    d.close()
    audio_keeps_flowing(sub)


def test_zmq_authorisation_belongs_to_the_connection(serve):
    srv = serve(extra=["--token", "s3cret"])
    srv.wait_ready(token="s3cret").close()
    ctx = zmq.Context.instance()
    victim = ctx.socket(zmq.DEALER)
    victim.setsockopt(zmq.LINGER, 0)
    victim.setsockopt(zmq.ROUTING_ID, b"player-1")
    victim.plain_username, victim.plain_password = b"scorewright", b"s3cret"
    victim.connect(srv.control_addr)
    victim.send(encode({"type": "ping"}))
    assert victim.poll(5000) and msgpack.unpackb(victim.recv())["type"] == "ok"
    victim.close()
    time.sleep(0.3)
    thief = ctx.socket(zmq.DEALER)                                  # same routing id, no token
    thief.setsockopt(zmq.LINGER, 0)
    thief.setsockopt(zmq.ROUTING_ID, b"player-1")
    thief.connect(srv.control_addr)
    thief.send(encode({"type": "set", "param": "danger", "value": 1.0}))
    assert not thief.poll(2000)
    thief.close()
    sub = AudioSubscriber(srv.audio_addr)                           # nor does it hear the audio
    assert sub.recv(1.5) is None
    sub.close()


def test_after_a_stall_the_stream_skips_to_the_present(serve):
    srv = serve()
    client = srv.wait_ready()
    ring = RingReader(path=client.status["ring"])
    for _ in range(25):
        ring.skip_to_latest()
        time.sleep(0.04)
    srv.proc.send_signal(signal.SIGSTOP)                 # a swap storm, a debugger, a long GC
    time.sleep(2.0)
    srv.proc.send_signal(signal.SIGCONT)
    time.sleep(0.5)
    ring.skip_to_latest()
    got, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 1.0:                   # a reader that keeps draining...
        got += len(ring.read(48000))
        time.sleep(0.02)
    assert got < 1.5 * 48000                             # ...gets real time, not a burst of backlog
    st = client.get_status()
    assert st["skipped"] >= 25
    pos_before = ring.stream_pos
    reply = client.set("danger", 0.3, wait=True)         # ring positions are still stream positions
    assert abs(reply["pos"] - pos_before) < 48000 // 2
    client.close()


def test_hostile_files_at_the_map_and_ring_paths(tmp_path):
    from scorewright.statemap.load import MapError, load
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, message in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                          (tmp_path, "not a regular file")):
        with pytest.raises(MapError, match=message):
            load(path)
    big = tmp_path / "big.yaml"
    big.write_text("#" * 1_000_001)
    with pytest.raises(MapError, match="the limit is"):
        load(big)
    for kind in ("dir", "fifo"):                           # pre-created at the ring's path
        name = f"hostile-{kind}-{os.getpid()}"
        ring = f"/dev/shm/scorewright-{name}"
        os.mkdir(ring) if kind == "dir" else os.mkfifo(ring)
        ports = free_ports(2)
        try:
            r = subprocess.run([sys.executable, "-m", "scorewright.cli", "serve", "demo", "--ring", name,
                                "--control-port", str(ports[0]), "--audio-port", str(ports[1]),
                                "--tcp-port", "0", "--web-port", "0"], capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 2 and "is not a ring file" in r.stderr, r.stderr
        finally:
            os.rmdir(ring) if kind == "dir" else os.unlink(ring)


def test_client_text_is_escaped_in_the_log_and_private_messages_stay_private(serve, write_map):
    map_path = write_map((MAPS / "demo.yaml").read_text())
    srv = serve(map_path, extra=["--token", "k"])
    client = srv.wait_ready(token="k")
    client.request("hello", client="evil\n\x1b[31mINJECTED", token="k")
    stranger = Tcp(srv.tcp)                              # connected, never said hello
    map_path.write_text("version: 1\nstyles: {}\n")       # a broken edit: a map error goes out
    deadline = time.monotonic() + 10
    while not client.errors and time.monotonic() < deadline:
        client.poll_replies()
        time.sleep(0.1)
    assert client.errors and client.errors[-1]["code"] == "map_error"
    stranger.sock.settimeout(1.0)
    with pytest.raises(TimeoutError):
        stranger.sock.recv(100)                          # nothing for the unauthenticated
    stranger.close()
    client.close()
    out = srv.stop()
    assert "\x1b[31m" not in out and "evil\\n\\x1b[31mINJECTED" in out


def test_memory_held_for_hostile_clients_is_returned(serve):
    """What hostile clients made the server hold goes back when they leave: three rounds of
    unfinished 1 MB frames leave the footprint no bigger than one round held (glibc keeps some
    of the heap fragmented; it never accumulates)."""
    srv = serve()
    srv.wait_ready().close()
    time.sleep(1.0)
    start, held, after = rss_mb(srv.proc.pid), [], []
    for _ in range(3):
        socks = []
        for _ in range(20):                                   # unfinished 1 MB frames, held...
            s = socket.create_connection(("127.0.0.1", srv.tcp))
            s.sendall(struct.pack("<I", 1_000_000) + b"x" * 900_000)
            socks.append(s)
        deadline = time.monotonic() + 10
        while rss_mb(srv.proc.pid) - start < 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        held.append(rss_mb(srv.proc.pid) - start)
        for s in socks:
            s.close()
        time.sleep(2.5)                                       # ...until they leave
        after.append(rss_mb(srv.proc.pid) - start)
    assert min(held) >= 8, held
    assert after[-1] < 0.8 * max(held) and after[-1] <= after[0] + 4, (start, held, after)


def test_ipv6_loopback_binds_and_serves():
    port, audio = free_ports(2)
    proc = subprocess.Popen([sys.executable, "-m", "scorewright.cli", "serve", "demo", "--host", "::1",
                             "--control-port", str(port), "--audio-port", str(audio), "--tcp-port", "0",
                             "--web-port", "0", "--ring", "none"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        from scorewright.client import wait_for_server
        client = wait_for_server(f"tcp://[::1]:{port}", within=30, process=proc)
        assert client.set("danger", 0.5, wait=True)["type"] == "ok"
        with AudioSubscriber(f"tcp://[::1]:{audio}") as sub:
            assert sub.recv(3.0) is not None
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)
