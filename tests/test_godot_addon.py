"""The Godot addon without Godot: GDScript parses and lints (gdtoolkit), and its wire codec agrees
with the server byte for byte through the shared golden cases, which are also spoken verbatim to
a live server over framed TCP. tests/test_godot_runtime.py runs the addon inside Godot 4."""

import json
import os
import socket
import subprocess
import sys
import time

import msgpack
import pytest

from scorewright.protocol import FrameReader, frame

from .conftest import ROOT

GODOT = ROOT / "game_bindings" / "godot"
GOLDEN = ROOT / "game_bindings" / "golden" / "msgpack_cases.json"
CASES = json.loads(GOLDEN.read_text())["cases"]

try:
    import gdtoolkit  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("gdtoolkit is not installed (pip install -e '.[dev]')", allow_module_level=True)


def from_json(value):
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def gd_files() -> list[str]:
    return sorted(str(p) for p in GODOT.rglob("*.gd"))


def test_gdscript_parses_and_lints():
    bin_dir = os.path.dirname(sys.executable)
    for tool in ("gdparse", "gdlint"):
        r = subprocess.run([os.path.join(bin_dir, tool), *gd_files()], cwd=GODOT,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_addon_layout():
    addon = GODOT / "addons" / "scorewright"
    cfg = (addon / "plugin.cfg").read_text()
    assert 'script="plugin.gd"' in cfg and (addon / "plugin.gd").exists()
    music = (addon / "scorewright_music.gd").read_text()
    for api in ("func set_param(", "func set_state(", "func trigger(", "func notes(", "func prompt(",
                "signal beat(", "signal bar(", "AudioStreamGenerator", "StreamPeerTCP"):
        assert api in music, api
    parts = {"scorewright_connection.gd": "StreamPeerTCP", "scorewright_stream.gd": "AudioStreamGenerator",
             "scorewright_launcher.gd": "OS.create_process"}
    for name, what in parts.items():
        assert what in (addon / name).read_text(), name
    assert "res://addons/scorewright/scorewright_music.gd" in (GODOT / "example" / "main.tscn").read_text()


def test_no_script_over_400_lines():
    """The project's rule for modules holds for GDScript too."""
    long = {p.name: n for p in GODOT.rglob("*.gd") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_scripts_are_gdformat_clean():
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "gdformat"), "--check", *gd_files()],
                       cwd=GODOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_godot_copy_of_the_golden_cases_is_current():
    assert (GODOT / "tests" / "msgpack_cases.json").read_text() == GOLDEN.read_text(), \
        "run python scripts/make_golden_msgpack.py"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_bytes_are_what_the_server_library_writes_and_reads(case):
    value, raw = from_json(case["value"]), bytes.fromhex(case["hex"])
    assert msgpack.packb(value) == raw
    assert msgpack.unpackb(raw) == value


def test_golden_requests_spoken_verbatim_to_a_live_server(serve):
    """Every request exactly as the codecs encode it, framed as the addon frames it (u32 LE
    length + payload): the server accepts each one and answers with its id."""
    srv = serve()
    srv.wait_ready().close()
    requests = [c for c in CASES if c["direction"] == "to_server"]
    with socket.create_connection(("127.0.0.1", srv.tcp), timeout=10) as sock:
        for case in requests:
            payload = bytes.fromhex(case["hex"])
            sock.sendall(frame(payload))
        replies, audio, markers = {}, [], []
        reader = FrameReader()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (len(replies) < len(requests) or not audio or not markers):
            for payload in reader.feed(sock.recv(1 << 16)):
                msg = msgpack.unpackb(payload)
                if msg["type"] == "audio":
                    audio.append(msg)
                elif msg["type"] == "marker":
                    markers.append(msg)
                elif "id" in msg:
                    replies[msg["id"]] = msg
    for case in requests:
        reply = replies[from_json(case["value"])["id"]]
        assert reply["type"] != "error", (case["name"], reply)
    assert replies["hello"]["type"] == "status"
    # what the addon reads from the server's own messages
    assert {"seq", "pcm", "n"} <= set(audio[0]) and len(audio[0]["pcm"]) == audio[0]["n"] * 8
    assert {"kind", "due", "beat", "bar"} <= set(markers[0])
