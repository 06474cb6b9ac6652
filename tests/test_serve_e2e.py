import socket
import struct
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from scorewright.backends.synth import analysis
from scorewright.client import AudioSubscriber, Client, RingReader, ScorewrightError
from scorewright.protocol import FrameReader, encode, frame


def collect_ring(ring: RingReader, seconds: float) -> np.ndarray:
    need, out = int(seconds * 48000), []
    deadline = time.monotonic() + seconds + 5
    while sum(len(b) for b in out) < need and time.monotonic() < deadline:
        if ring.available:
            out.append(ring.read(need - sum(len(b) for b in out)))
        else:
            time.sleep(0.005)
    return np.concatenate(out)


def test_serve_end_to_end(serve):
    srv = serve()
    client = srv.wait_ready()
    status = client.status
    assert status["backend"] == "synth" and status["sample_rate"] == 48000
    ring = RingReader(path=status["ring"])
    ring.skip_to_latest()
    sub = AudioSubscriber(srv.audio_addr)

    calm = collect_ring(ring, 4.0)
    blocks = [sub.recv(2.0) for _ in range(25)]
    assert all(b is not None and b.shape == (1920, 2) for b in blocks)
    assert sub.lost == 0

    reply = client.set("danger", 0.95, wait=True)
    assert reply["type"] == "ok" and reply["frame"] > 0 and reply["due"] > time.time() - 1
    client.state("area", "forest")
    time.sleep(6.0)                        # smoothing + landing on the next bar + 1 s fade
    ring.skip_to_latest()
    combat = collect_ring(ring, 4.0)
    # combat: louder (orchestral drums and strings) and a different spectrum than calm pads
    assert analysis.rms(combat) > 1.5 * analysis.rms(calm)
    hb_calm, hb_combat = analysis.high_band_share(calm), analysis.high_band_share(combat)
    assert abs(hb_combat / hb_calm - 1) > 0.2

    # bad input gets an error reply and the audio keeps flowing
    with pytest.raises(ScorewrightError) as e:
        client.state("area", "the moon", wait=True)
    assert e.value.code == "bad_value"
    client._sock.send(b"\xc1\xc1 not msgpack")
    assert client._sock.poll(2000)
    assert msgpack.unpackb(client._sock.recv())["code"] == "bad_msgpack"
    assert sub.recv(2.0) is not None and sub.lost == 0

    st = client.get_status()
    assert st["underruns"] == 0, st
    assert st["errors"] >= 2
    ring.close()
    sub.close()
    client.close()
    out = srv.stop()
    assert srv.proc.returncode == 0, out
    assert "stopped:" in out
    assert not Path(status["ring"]).exists()          # ring unlinked on SIGTERM


def tcp_call(sock: socket.socket, reader: FrameReader, msg: dict, want_type=None) -> dict:
    sock.sendall(frame(encode(msg)))
    while True:
        for payload in reader.feed(sock.recv(65536)):
            obj = msgpack.unpackb(payload)
            if want_type is None or obj["type"] == want_type:
                return obj


def test_framed_tcp_control_and_audio(serve):
    srv = serve()
    srv.wait_ready().close()
    sock = socket.create_connection(("127.0.0.1", srv.tcp), timeout=5)
    reader = FrameReader()
    hello = tcp_call(sock, reader, {"type": "hello", "client": "godot", "want_audio": True, "id": 1})
    assert hello["type"] == "status" and hello["id"] == 1
    seqs, got = [], 0
    while got < 10:
        for payload in reader.feed(sock.recv(65536)):
            obj = msgpack.unpackb(payload)
            if obj["type"] == "audio":
                assert len(obj["pcm"]) == 1920 * 2 * 4 and obj["pos"] == obj["seq"] * 1920
                seqs.append(obj["seq"])
                got += 1
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert tcp_call(sock, reader, {"type": "set", "param": "danger", "value": 0.5, "id": 2}, "ok")["id"] == 2
    err = tcp_call(sock, reader, {"type": "set", "param": "danger", "value": "x", "id": 3}, "error")
    assert err["code"] == "bad_field" and err["id"] == 3
    # a hostile length prefix closes that connection only; the server keeps serving others
    sock.sendall(struct.pack("<I", 0x7FFFFFFF) + b"junk")
    assert tcp_call(sock, reader, {"type": "ping"}, "error")["code"] == "too_large"
    sock.close()
    with AudioSubscriber(srv.audio_addr) as sub:
        assert sub.recv(3.0) is not None


def test_non_loopback_bind_needs_a_token(serve):
    srv = serve(extra=["--host", "0.0.0.0"])
    srv.proc.wait(timeout=60)
    out = srv.stop()
    assert srv.proc.returncode == 2
    assert "--token" in out


def test_serve_takes_its_token_from_the_environment(serve):
    """SCOREWRIGHT_TOKEN (how the engine launchers pass it: other users can read a process's
    command line, not its environment): a client without it is refused, one with it served."""
    srv = serve(env={"SCOREWRIGHT_TOKEN": "env-s3cret"})
    srv.wait_ready(token="env-s3cret").close()
    assert b"env-s3cret" not in Path(f"/proc/{srv.proc.pid}/cmdline").read_bytes()
    for given, expected in ((None, "error"), ("wrong", "error"), ("env-s3cret", "status")):
        sock = socket.create_connection(("127.0.0.1", srv.tcp), timeout=5)
        hello = {"type": "hello", "client": "test", "id": 1} | ({"token": given} if given else {})
        reply = tcp_call(sock, FrameReader(), hello)
        assert reply["type"] == expected and reply["id"] == 1, (given, reply)
        if expected == "error":
            assert reply["code"] == "unauthorized", reply
        sock.close()


def test_client_setters_answer_bad_values_instead_of_raising(serve):
    srv = serve()
    client = srv.wait_ready()
    # wrong types travel as they are and come back as `error` replies: the game loop never raises
    ids = [client.set("danger", "high"), client.notes(on=["C4"]), client.prompt(text="x", weight="lots"),
           client.set("danger", object())]                     # this one cannot even be encoded
    assert all(isinstance(i, int) for i in ids)
    deadline = time.monotonic() + 5
    while len(client.errors) < 4 and time.monotonic() < deadline:
        client.poll_replies()
        time.sleep(0.02)
    codes = {e["id"]: e["code"] for e in client.errors}
    assert codes == {ids[0]: "bad_field", ids[1]: "bad_field", ids[2]: "bad_field", ids[3]: "bad_value"}
    with pytest.raises(ScorewrightError) as e:
        client.set("danger", "high", wait=True)
    assert e.value.code == "bad_field" and "must be int or float" in str(e.value)
    assert client.set("danger", np.float32(0.5), wait=True)["type"] == "ok"    # numpy numbers are fine
    client.close()


def test_audio_blocks_raise_after_their_timeout_instead_of_ending_silently():
    from scorewright.transport import free_port
    with AudioSubscriber(f"tcp://127.0.0.1:{free_port()}") as sub, pytest.raises(TimeoutError, match="serve"):
        next(sub.blocks(timeout=0.3))


def test_with_no_server_messages_are_dropped_not_queued(serve):
    from scorewright.transport import free_port
    port = free_port()
    game = Client(f"tcp://127.0.0.1:{port}", timeout=0.5)
    for _ in range(50):
        game.set("danger", 0.9)                      # no server yet: dropped at once, never blocks
    assert game.dropped == 50
    with pytest.raises(TimeoutError):
        game.ping()
    game.close()


def test_serve_stops_by_itself_when_its_parent_pid_exits(serve):
    """--parent-pid: a game that is killed leaves no server behind (it stops cleanly: its ring
    file is removed), and a PID that is not running is refused at once."""
    import subprocess
    import sys

    from scorewright.transport.shm import ring_path

    game = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        srv = serve(extra=["--parent-pid", str(game.pid)])
        srv.wait_ready().close()
        assert ring_path(srv.ring).exists()
        game.kill()
        game.wait()
        killed = time.monotonic()
        srv.proc.wait(timeout=10)
        assert time.monotonic() - killed < 3.0
    finally:
        game.kill()
    out = srv.stop()
    assert srv.proc.returncode == 0 and f"launching process {game.pid} has exited" in out, out
    assert not ring_path(srv.ring).exists()
    refused = serve(extra=["--parent-pid", str(game.pid)])
    refused.proc.wait(timeout=60)
    assert refused.proc.returncode == 2 and "no such process" in refused.stop()


def test_serve_removes_the_rings_that_killed_servers_left(serve):
    """At start `serve` removes ring files whose writer died without cleaning up (on Windows
    the engines end the server with TerminateProcess): they would pile up in %TEMP%."""
    import uuid

    from scorewright.transport.shm import RingWriter, ring_path

    left = RingWriter(f"test-killed-{uuid.uuid4().hex[:8]}", capacity_frames=480)
    left._m.u32[13], left._m.u64[5] = 2 ** 31 - 2, 0          # its writer is gone, long quiet
    left.close(unlink=False)
    try:
        srv = serve()
        srv.wait_ready().close()
        assert not left.path.exists()
        assert ring_path(srv.ring).exists()
    finally:
        left.path.unlink(missing_ok=True)
    assert f"removed {left.path}" in srv.stop()
