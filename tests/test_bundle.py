"""`scorewright bundle` on Linux: the folder is what a game ships (its map and the files the map
names, licences, nothing from a development environment, ≤ 150 MB), and the server inside it
runs in Debian sid's root, which has no Python: a client gets audio and markers, and it stops
by itself when the process that launched it is killed. Builds the bundle in CI (cached in
~/.cache/scorewright/bundle); skipped elsewhere until it is built."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scorewright.transport import free_ports
from scorewright.transport.shm import ring_path

from .bundle_helpers import (
    CLEAN_ENV,
    GAME_MAP_NAME,
    GAME_MAP_TITLE,
    MAKE_IT,
    SID_ROOT,
    SOURCES,
    cached_bundle,
    in_sid_root,
    listen,
    sid_available,
    wait_listening,
)

MAX_BYTES = 150_000_000
CODEMIRROR = sorted(p.name for p in (SOURCES / "studio" / "static" / "vendor" / "codemirror").iterdir()
                    if p.suffix == ".js")[0]


@pytest.fixture(scope="module")
def bundle():
    if not sys.platform.startswith("linux"):
        pytest.skip("the bundle tests run on Linux")
    folder, _ = cached_bundle(build=bool(os.environ.get("CI")))
    if folder is None:
        pytest.skip(f"the bundle is not built here; {MAKE_IT}")
    return folder


def test_bundle_holds_the_game_map_licences_and_nothing_else(bundle):
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["maps"] == [f"{GAME_MAP_NAME}.yaml"] and not info["mrt2"]
    assert {p.relative_to(bundle / "maps").as_posix() for p in (bundle / "maps").rglob("*") if p.is_file()} \
        == {f"{GAME_MAP_NAME}.yaml", "motifs/cave.mid", "motifs/fanfare.mid"}
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    assert size - (bundle / "bundle.json").stat().st_size == info["bytes"]    # all but itself
    assert size <= MAX_BYTES, size
    internal = {p.name.split(".")[0].split("-")[0] for p in (bundle / "_internal").iterdir()}
    assert not internal & {"torch", "matplotlib", "pygame", "PIL", "jax", "scipy", "pytest", "playwright"}
    assert (bundle / "_internal" / "pretty_midi" / "TimGM6mb.sf2").is_file()
    index = (bundle / "licenses" / "README.txt").read_text()
    for part in ("TimGM6mb", "all-MiniLM-L6-v2", "Python", "numpy", "pyzmq", "tinysoundfont", "tokenizers"):
        assert part in index, part
    assert "GNU GENERAL PUBLIC LICENSE" in (bundle / "licenses" / "TimGM6mb" / "GPL-2.0.txt").read_text()
    assert "PSF" in (bundle / "licenses" / "python" / "LICENSE.txt").read_text() or \
        "PYTHON SOFTWARE FOUNDATION" in (bundle / "licenses" / "python" / "LICENSE.txt").read_text()
    assert any((bundle / "licenses" / "packages" / "numpy").iterdir())


@pytest.fixture
def sid():
    reason = sid_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the bundle in Debian sid's root: {reason}")
        pytest.skip(reason)
    assert not list((SID_ROOT / "usr" / "bin").glob("python*")), "the sid root has a Python"


def test_bundle_serves_without_python_and_stops_with_its_parent(bundle, sid):
    """Chrooted into the sid root, in a clean environment: the shipped map by name, with a
    token; 6 s of audible audio and beat/bar markers; the studio page; then the 'game' is
    SIGKILLed and the server stops cleanly (ring removed) within 3 s."""
    game = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    ports, ring = free_ports(4), f"test-bundle-{uuid.uuid4().hex[:8]}"
    token = secrets.token_hex(8)
    server = subprocess.Popen(
        in_sid_root(bundle, "serve", GAME_MAP_NAME, "--control-port", str(ports[0]), "--audio-port",
                    str(ports[1]), "--tcp-port", str(ports[2]), "--web-port", str(ports[3]), "--ring", ring,
                    "--token", token, "--parent-pid", str(game.pid)),
        env=CLEAN_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        with wait_listening(ports[2], server, within=60) as sock:
            got = listen(sock, 6.0, token)
        assert got["status"]["type"] == "status" and got["status"]["map"] == GAME_MAP_TITLE, got["status"]
        assert ring_path(ring).exists()
        assert len(got["audio"]) >= 5 * 25, len(got["audio"])
        pcm = np.frombuffer(b"".join(m["pcm"] for m in got["audio"]), "<f4")
        assert np.isfinite(pcm).all() and float(np.sqrt(np.mean(pcm ** 2))) > 1e-3
        assert {"beat", "bar"} <= {m["kind"] for m in got["markers"]}
        studio = f"http://127.0.0.1:{ports[3]}/"              # the studio page and its editor
        with urllib.request.urlopen(studio, timeout=10) as page:
            assert b"Scorewright Studio" in page.read()
        with urllib.request.urlopen(studio + "vendor/codemirror/" + CODEMIRROR, timeout=10) as f:
            assert len(f.read()) > 1000
        game.kill()
        game.wait()
        killed = time.monotonic()
        server.wait(timeout=10)
        assert time.monotonic() - killed < 3.0
    finally:
        game.kill()
        if server.poll() is None:
            server.kill()
    out = server.stdout.read()
    assert server.returncode == 0, out
    assert f"the launching process {game.pid} has exited: stopping" in out, out
    assert not ring_path(ring).exists()


# -- the inputs, checked before PyInstaller runs (no build needed) ------------------------------
def test_bundle_maps_bring_the_files_they_name(tmp_path):
    from scorewright.bundle.maps import copy_maps

    from .bundle_helpers import stage_game_map
    game = stage_game_map(tmp_path / "music")
    (tmp_path / "music" / "notes.txt").write_text("not part of the map")
    assert copy_maps([game], tmp_path / "maps") == [game.name]
    shipped = {p.relative_to(tmp_path / "maps").as_posix() for p in (tmp_path / "maps").rglob("*")
               if p.is_file()}
    assert shipped == {game.name, "motifs/cave.mid", "motifs/fanfare.mid"}
    assert copy_maps([tmp_path / "music"], tmp_path / "again") == [game.name]     # a folder of maps


def test_bundle_maps_through_a_symlink_anchor_at_the_links_folder(tmp_path, monkeypatch):
    from scorewright.bundle import BundleError
    from scorewright.bundle import maps as bundle_maps

    from .bundle_helpers import stage_game_map
    real = stage_game_map(tmp_path / "real")              # the map, and its motifs where it links from
    (tmp_path / "music").mkdir()
    shutil.copytree(tmp_path / "real" / "motifs", tmp_path / "music" / "motifs")
    link = tmp_path / "music" / real.name
    link.symlink_to(Path("..") / "real" / real.name)
    assert bundle_maps.copy_maps([link], tmp_path / "maps") == [real.name]
    assert (tmp_path / "maps" / real.name).read_text() == real.read_text()
    assert (tmp_path / "maps" / "motifs" / "cave.mid").is_file()
    smap = bundle_maps.load(link)                         # a named file outside the folder (none
    outside = replace(smap, assets=(tmp_path / "elsewhere.mid",))   # loads so): a BundleError
    monkeypatch.setattr(bundle_maps, "load", lambda path: outside)
    with pytest.raises(BundleError, match=f"--map {link}: it names .*elsewhere.mid, which is outside"):
        bundle_maps.copy_maps([link], tmp_path / "again")


def test_bundle_refuses_bad_maps_and_foreign_folders_before_building(tmp_path, write_map, capsys):
    from scorewright.cli import main
    bad = write_map("version: 1\nstyles: {calm: {prompt: 3}}\n")
    assert main(["bundle", "--map", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert f"{bad}:2:25: styles.calm.prompt" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    assert main(["bundle", "--out", str(tmp_path / "mine")]) == 2
    assert "is not a Scorewright bundle" in capsys.readouterr().err
    assert (tmp_path / "mine" / "precious.txt").exists()
