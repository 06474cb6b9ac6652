"""Faults and hostile input: killed readers and servers, fuzzed maps and messages, security."""

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorewright.client import AudioSubscriber, Client, RingReader
from scorewright.protocol import FrameReader, encode, frame
from scorewright.statemap.load import MapError, load_text

from .conftest import MAPS

YAML_BITS = ["version: 1\n", "styles:\n", "  a: {prompt: x}\n", "rules:\n", "  - when: ", "t > 1\n",
             "[", "]", "{", "}", "&a ", "*a ", ": ", "- ", "'", '"', "\t", "\n", " ", "!!binary ",
             ".nan", "1e999", "\x00", "\ufeff", "\u202e", "#", "?", "|", ">", "%YAML 1.1\n"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=400), st.lists(st.sampled_from(YAML_BITS), max_size=60).map("".join)))
def test_map_loader_fuzz_never_crashes(text):
    try:
        load_text(text, Path("/tmp/fuzz.yaml"))
    except MapError as e:
        assert all(p.line >= 1 and p.col >= 1 for p in e.problems)


@pytest.mark.parametrize("text,message", [
    ("a: " + "[" * 20000 + "]" * 20000, "nested too deeply"),
    ("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)),
     "exploding aliases"),
    ("&a [*a]", "recursive"),
    ("version: 1\nstyles: {a: {prompt: x}}\nparams: {p: {max: .inf}}\n", "expected a finite number"),
    ("x: !!python/object/apply:os.system [ls]", "unsupported YAML tag"),
    ("x: !!python/name:os.system ''", "unsupported YAML value"),
    ("version: 1\nstyles:\n  a: {prompt: \"" + "x" * 3000 + "\"}\n", "bad value"),
])
def test_hostile_maps_are_refused(text, message):
    with pytest.raises(MapError, match=message):
        load_text(text, Path("/tmp/hostile.yaml"))


def test_audio_style_path_traversal(write_map):
    with pytest.raises(MapError, match="outside the map's folder"):
        from scorewright.statemap.load import load
        load(write_map("version: 1\nstyles:\n  a: {audio: ../../../etc/passwd}\n"))


def test_server_survives_garbage_and_keeps_streaming(serve):
    srv = serve()
    client = srv.wait_ready()
    sub = AudioSubscriber(srv.audio_addr)
    assert sub.recv(3.0) is not None
    payloads = [b"", b"\x00", b"\xff" * 100, encode({"type": "set"}), msgpack.packb([1] * 5000),
                msgpack.packb({"type": "notes", "on": list(range(1000))}),
                msgpack.packb({"type": "prompt", "text": "x" * 100_000}),
                msgpack.packb({"type": "set", "param": "danger", "value": float("nan")}),
                msgpack.packb({"type": "prompt", "audio": b"\x00" * 7}),
                msgpack.packb({"type": "event", "name": "x", "data": {"a": [[[[[[[[[[1]]]]]]]]]]}}),
                os.urandom(4096)]
    for p in payloads:                       # over ZMQ: each gets an error reply
        client._sock.send(p)
        assert client._sock.poll(3000), p[:20]
        reply = msgpack.unpackb(client._sock.recv())
        assert reply["type"] == "error", (p[:20], reply)
    for p in payloads:                       # over framed TCP
        with socket.create_connection(("127.0.0.1", srv.tcp), timeout=5) as s:
            s.sendall(frame(p))
            reader = FrameReader()
            replies = []
            while not replies:
                replies = reader.feed(s.recv(65536))
            assert msgpack.unpackb(replies[0])["type"] == "error"
    with socket.create_connection(("127.0.0.1", srv.tcp), timeout=5) as s:   # truncated frame
        s.sendall(struct.pack("<I", 1000) + b"abc")
    assert client.ping()["type"] == "ok"
    seq = sub.last_header["seq"]
    block = sub.recv(3.0)
    assert block is not None and sub.lost == 0 and sub.last_header["seq"] > seq
    assert client.get_status()["underruns"] == 0
    sub.close()
    client.close()


def test_token_required_off_loopback_and_checked(serve):
    srv = serve(extra=["--token", "s3cret"])
    c = srv.wait_ready(token="s3cret")           # ZMQ: PLAIN credentials on the connection
    assert c.set("danger", 0.5, wait=True)["type"] == "ok"
    c.close()
    for token in (None, "wrong"):                 # without them, ZMQ gets no answer at all
        with pytest.raises(ConnectionError):
            Client.connect(srv.control_addr, timeout=1.0, token=token)
    with socket.create_connection(("127.0.0.1", srv.tcp), timeout=5) as s:   # framed TCP: hello
        reader = FrameReader()

        def ask(msg: dict) -> dict:
            s.sendall(frame(encode(msg)))
            replies = []
            while not replies:
                replies = reader.feed(s.recv(65536))
            return msgpack.unpackb(replies[0])
        assert ask({"type": "ping"})["code"] == "unauthorized"
        assert ask({"type": "hello", "token": "wrong"})["code"] == "unauthorized"
        assert ask({"type": "hello", "token": "s3cret"})["type"] == "status"
        assert ask({"type": "set", "param": "danger", "value": 0.2})["type"] == "ok"


def test_reader_killed_and_restarted_resyncs(serve):
    srv = serve()
    srv.wait_ready().close()
    ring_path = f"/dev/shm/scorewright-{srv.ring}" if sys.platform.startswith("linux") else None
    code = ("import time,sys\nfrom scorewright.client import RingReader\n"
            f"r = RingReader(path={ring_path!r}, latest=False)\nprint('ready', flush=True)\n"
            "while True:\n    r.read(960)\n    time.sleep(0.005)\n")
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    reader.send_signal(signal.SIGKILL)           # the game crashed mid-read
    reader.wait()
    time.sleep(2.0)                              # meanwhile the ring filled up (1 s capacity)
    fresh = RingReader(path=ring_path, keep=1920)
    assert fresh.available <= 1920 * 5           # resynced to the newest audio, not 1 s old
    got = sum(len(b) for _, b in zip(range(25), fresh.blocks(timeout=2.0), strict=False))
    assert got == 25 * 1920
    fresh.close()


def test_server_killed_and_restarted_clients_recover(serve):
    srv = serve()
    client = srv.wait_ready()
    ring = RingReader(path=client.status["ring"])
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    assert Path(client.status["ring"]).exists()  # a dead writer leaves its ring behind
    restarted = subprocess.Popen(
        [sys.executable, "-m", "scorewright.cli", "serve", str(MAPS / "demo.yaml"), "--control-port",
         str(srv.control), "--audio-port", str(srv.audio), "--tcp-port", str(srv.tcp), "--web-port", "0",
         "--ring", srv.ring],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        reply = None
        while reply is None and time.monotonic() < deadline:
            try:
                reply = client.set("danger", 0.4, wait=True)   # the same client object reconnects
            except TimeoutError:
                assert restarted.poll() is None, restarted.stdout.read()
        assert reply and reply["type"] == "ok"
        blocks = []
        for b in ring.blocks(timeout=5.0):                     # the ring reader reattaches
            blocks.append(b)
            if len(blocks) == 10:
                break
        assert len(blocks) == 10 and ring.reattached == 1
    finally:
        restarted.terminate()
        restarted.wait(10)
        client.close()
