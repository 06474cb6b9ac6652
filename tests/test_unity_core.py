"""The Unity package's engine-independent core (C#), compiled with mono and run against a live
`scorewright serve`: codec golden files, resampler, ring and TCP audio bit-exact with the Python
client, game state acknowledged."""

import json
import os
import shutil
import subprocess
import threading
import zlib
from pathlib import Path

import pytest

from scorewright.client import AudioSubscriber

from .conftest import MAPS, ROOT

UNITY = ROOT / "game_bindings" / "unity"
GOLDEN = ROOT / "game_bindings" / "golden" / "msgpack_cases.json"

if not shutil.which("mcs") or not shutil.which("mono"):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs mono (apt-get install mono-mcs mono-runtime): .ci/run installs it")
    pytest.skip("mono's mcs is not installed (apt-get install mono-mcs)", allow_module_level=True)


@pytest.fixture(scope="module")
def core_tests(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("cs") / "CoreTests.exe"
    sources = sorted(str(p) for p in (UNITY / "Runtime" / "Core").glob("*.cs"))
    r = subprocess.run(["mcs", "-langversion:7", "-warnaserror", f"-out:{exe}", "-r:System.Core.dll",
                        *sources, str(UNITY / "Tests~" / "CoreTests" / "CoreTests.cs")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return exe


def run(exe: Path, *args: str, timeout: float = 60) -> str:
    r = subprocess.run(["mono", str(exe), *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and "FAIL" not in r.stdout, r.stdout + r.stderr
    return r.stdout


def test_core_has_no_unity_dependency():
    for source in (UNITY / "Runtime" / "Core").glob("*.cs"):
        assert "UnityEngine" not in source.read_text(), source


def test_codec_round_trips_every_golden_case(core_tests):
    out = run(core_tests, "golden", str(GOLDEN))
    cases = json.loads(GOLDEN.read_text())["cases"]
    assert out.count("round-trips byte for byte") == len(cases)


def test_resampler_plays_48k_at_44k1_on_any_channel_count(core_tests):
    assert run(core_tests, "player").count("ok ") == 3


def test_live_ring_and_tcp_audio_match_the_python_client(core_tests, serve, tmp_path):
    srv = serve()
    srv.wait_ready().close()
    python_crc: dict[int, int] = {}
    stop = threading.Event()

    def listen() -> None:
        with AudioSubscriber(srv.audio_addr) as sub:
            while not stop.is_set():
                block = sub.recv(0.1)
                if block is not None:
                    python_crc[sub.last_header["seq"]] = zlib.crc32(block.astype("<f4").tobytes())
    listener = threading.Thread(target=listen)
    listener.start()
    try:
        run(core_tests, "live", str(srv.tcp), "6", str(tmp_path / "live.json"), timeout=90)
    finally:
        stop.set()
        listener.join()
    seen = json.loads((tmp_path / "live.json").read_text())
    ring = {int(k): v for k, v in seen["ring"].items()}
    tcp = {int(k): v for k, v in seen["tcp"].items()}
    for name, got in (("ring", ring), ("tcp", tcp)):
        frames = sorted(got)
        assert len(frames) >= 5 * 25, (name, len(frames))
        assert frames == list(range(frames[0], frames[-1] + 1)), f"{name}: frames missing"
        common = set(frames) & set(python_crc)
        assert len(common) >= 4 * 25, (name, len(common))
        assert all(got[k] == python_crc[k] for k in common), f"{name}: audio differs from the Python client's"
    acks = seen["acks"]
    assert acks["1"]["type"] == "ok" and acks["1"]["frame"] > 0 and acks["1"]["due"] > 0   # set danger
    assert acks["2"]["type"] == "ok"                                                          # area=cave
    assert acks["3"]["type"] == "error" and acks["3"]["code"] == "bad_value"             # area=volcano
    assert acks["4"]["type"] == "status" and abs(acks["4"]["params"]["danger"] - 0.8) < 0.01  # smoothed
    assert {"beat", "bar"} <= set(seen["markers"])
    assert seen["session_underruns"] <= 1     # at most the one at start-up if the cushion was short


def test_unity_glue_and_sample_type_check_against_the_unity_api(tmp_path):
    """ScorewrightMusic and the sample compile against the Unity API surface they use."""
    sources = [*(UNITY / "Runtime").rglob("*.cs"), *(UNITY / "Samples~").rglob("*.cs"),
               ROOT / "tests" / "fixtures" / "unity_api_surface.cs"]
    r = subprocess.run(["mcs", "-langversion:7", "-warnaserror", "-target:library",
                        f"-out:{tmp_path / 'g.dll'}", "-r:System.Core.dll", *map(str, sources)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_is_a_valid_upm_package_with_meta_files():
    import sys
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_unity_meta import assets, meta_text

    manifest = json.loads((UNITY / "package.json").read_text())
    assert manifest["name"] == "com.scorewright.music" and manifest["unity"]
    for sample in manifest["samples"]:
        assert (UNITY / sample["path"]).is_dir()
    for asmdef in UNITY.rglob("*.asmdef"):
        json.loads(asmdef.read_text())
    missing = [str(p) for p in assets() if not p.with_name(p.name + ".meta").exists()]
    assert not missing, f"run python scripts/make_unity_meta.py: {missing}"
    guids = [meta_text(p).split("guid: ")[1][:32] for p in assets()]
    assert len(set(guids)) == len(guids)


def test_session_reconnects_to_a_restarted_server(core_tests, serve):
    """Server SIGKILLed and started again on the same ports: the C# session notices, retries
    with backoff, reconnects, opens the new ring and plays again."""
    import signal
    import sys

    srv = serve()
    srv.wait_ready().close()
    proc = subprocess.Popen(["mono", str(core_tests), "reconnect", str(srv.tcp)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    restarted = None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(("ready", "FAIL")):
                break
        assert lines and lines[-1].startswith("ready"), "".join(lines)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        restarted = subprocess.Popen(
            [sys.executable, "-m", "scorewright.cli", "serve", str(MAPS / "demo.yaml"),
             "--control-port", str(srv.control), "--audio-port", str(srv.audio), "--tcp-port", str(srv.tcp),
             "--web-port", "0",
             "--ring", srv.ring], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "FAIL" not in out, "".join(lines) + out
        assert "".join(lines).count("ok ") == 1 and out.count("ok ") == 4, out
    finally:
        if proc.poll() is None:
            proc.kill()
        if restarted is not None:
            restarted.terminate()
            restarted.wait(10)


def test_launcher_starts_the_shipped_server_and_it_never_outlives_the_game(core_tests):
    """ServerLauncher (what 'Launch Server' runs) with a `scorewright bundle` folder, in an
    environment without our Python: free ports, its own ring and token (in the server's
    environment, not on its command line), --parent-pid; it plays and is stopped; a second
    server stops by itself when the game's process is SIGKILLed."""
    import signal

    from .bundle_helpers import (
        CLEAN_ENV,
        GAME_MAP_NAME,
        GAME_MAP_TITLE,
        MAKE_IT,
        alive,
        cached_bundle,
        check_token_is_private,
        kill_game_and_time_its_server,
    )

    bundle, _ = cached_bundle(build=bool(os.environ.get("CI")))
    if bundle is None:
        pytest.skip(f"the bundle is not built here; {MAKE_IT}")
    proc = subprocess.Popen(["mono", str(core_tests), "launch", str(bundle), f"{GAME_MAP_NAME}.yaml"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=CLEAN_ENV)
    lines, server = [], 0
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(("ready", "FAIL")):
                break
        out = "".join(lines)
        assert lines and lines[-1].startswith("ready") and "FAIL" not in out, out
        assert f"map {GAME_MAP_TITLE}\n" in out and out.count("ok ") == 8, out
        server, port = (int(x) for x in lines[-1].split()[1:3])
        check_token_is_private(server, port)
        assert kill_game_and_time_its_server(proc, server) < 3.0
    finally:
        if proc.poll() is None:
            proc.kill()
        if server and alive(server):
            os.kill(server, signal.SIGKILL)
