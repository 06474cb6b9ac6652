"""Scorewright Studio in a real headless Chromium against a real `scorewright studio`: controls
from the map, audio into the worklet, the inspector, inline validation and hot reload, takes
(record -> replay -> the same audio as `render --events`), and a page attached to a game."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from scorewright.audio import to_int16
from scorewright.client import Client

from .conftest import MAPS
from .studio_helpers import CHROMIUM_ARGS, STUDIO_MAP, Studio, chromium_path, open_page, screenshot

playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (playwright)")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def studio(tmp_path):
    map_path = tmp_path / "studio_test.yaml"
    map_path.write_text(STUDIO_MAP)
    s = Studio(map_path)
    yield s
    s.stop()


def status(s: Studio) -> dict:
    with Client.connect(s.control_addr) as c:
        return c.get_status()


def test_controls_audio_and_inspector(browser, studio, tmp_path):
    page = open_page(browser, studio.url)
    slider = page.locator('input[data-param="danger"]')
    assert slider.get_attribute("min") == "0" and slider.get_attribute("max") == "1"
    assert page.locator('button[data-state="area=forest"]').count() == 1
    assert page.locator('button[data-state="area=cave"]').count() == 1
    assert page.locator('button[data-event="hit"]').get_attribute("class") == "stinger"
    t0, n0 = time.monotonic(), page.evaluate("studio.received")
    slider.fill("0.9")                                      # moving the slider...
    deadline = time.monotonic() + 5
    while status(studio)["params"]["danger"] < 0.85 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status(studio)["params"]["danger"] >= 0.85      # ...moves the server's param
    page.wait_for_timeout(10_000)
    got = page.evaluate("studio.received") - n0
    elapsed = time.monotonic() - t0
    assert 0.8 * elapsed * 48000 < got < 1.2 * elapsed * 48000   # real time, not a burst or a trickle
    w = page.evaluate("studio.worklet")
    assert w["underruns"] == 0 and w["playing"], w
    assert page.evaluate("studio.energy") > 0.001
    # the inspector shows why: the fight rule is on, with the value it reads
    row = page.locator('tr[data-rule="fight"]')
    assert "danger=0.90" in row.inner_text() and row.get_attribute("class") == "on"
    assert page.locator('.bar[data-style="combat"]').count() == 1
    assert page.evaluate("studio.latencies.length") >= 1
    screenshot(page, "studio_combat", tmp_path)
    assert not page.errors, page.errors
    page.close()


def test_a_state_button_changes_the_style_within_a_bar(browser, studio):
    page = open_page(browser, studio.url)
    page.wait_for_function("studio.snap && studio.snap.weights.calm > 0.99", timeout=10000)
    clicked = time.monotonic()
    page.click('button[data-state="area=cave"]')
    page.wait_for_function("studio.snap && (studio.snap.weights.cave || 0) > 0.99", timeout=10000)
    bar_s = 4 * 60 / 120
    assert time.monotonic() - clicked < bar_s + 0.5          # one bar at 120 bpm, plus what is buffered
    assert page.locator('button[data-state="area=cave"]').get_attribute("class") == "on"
    page.close()


def test_a_broken_edit_shows_its_error_at_its_line_and_the_music_plays_on(browser, studio, tmp_path):
    page = open_page(browser, studio.url)
    good = studio.map_path.read_text()
    broken = good.replace('when: "danger > 0.6"', 'when: "danger >> 0.6"')
    page.evaluate("text => document.querySelector('.CodeMirror').CodeMirror.setValue(text)", broken)
    page.click("#editor .toolbar button")
    page.wait_for_selector("ul.problems li", timeout=10000)
    problem = page.locator("ul.problems li").first.inner_text()
    line = broken.splitlines().index('    when: "danger >> 0.6"') + 1
    assert f"studio_test.yaml:{line}:" in problem and "RShift" in problem
    assert page.locator(".problem-marker").count() == 1
    assert studio.map_path.read_text() == broken                 # saved as written
    n0 = page.evaluate("studio.received")
    page.wait_for_timeout(3000)
    assert page.evaluate("studio.received") - n0 > 2 * 48000      # the last good map keeps playing
    assert status(studio)["map_error"]
    screenshot(page, "studio_error", tmp_path)
    fixed = good.replace("combat: {prompt:", "combat: {weight: 0, prompt:")
    page.evaluate("text => document.querySelector('.CodeMirror').CodeMirror.setValue(text)", fixed)
    page.click("#editor .toolbar button")
    deadline = time.monotonic() + 10
    while status(studio)["map_error"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status(studio)["map_error"] is None                    # the fix reloads
    assert page.locator("ul.problems li").count() == 0
    # an edit made in another editor shows up in the page
    outside = fixed.replace("smooth_ms: 200", "smooth_ms: 250")
    studio.map_path.write_text(outside)
    page.wait_for_function("document.querySelector('.CodeMirror').CodeMirror.getValue()"
                           ".includes('smooth_ms: 250')", timeout=10000)
    page.close()


def test_record_replay_and_export_give_the_render_of_the_take(browser, studio, tmp_path):
    page = open_page(browser, studio.url)
    page.click('button[data-action="record"]')
    page.wait_for_function("document.querySelector('button[data-action=record]').textContent.includes('Stop')")
    page.wait_for_timeout(600)
    page.locator('input[data-param="danger"]').fill("0.8")
    page.wait_for_timeout(900)
    page.click('button[data-state="area=cave"]')
    page.wait_for_timeout(700)
    page.click('button[data-event="hit"]')
    page.wait_for_timeout(1500)
    page.click('button[data-action="record"]')
    page.wait_for_selector("button[data-replay]")
    take = page.locator("button[data-replay]").first.get_attribute("data-replay")
    take_path = studio.map_path.parent / "studio-takes" / take
    assert take_path.is_file()
    seconds = 6.0
    page.evaluate("studio.capture = []")
    page.click(f'button[data-replay="{take}"]')
    page.wait_for_function("studio.replay && studio.replay.take === " + json.dumps(take))
    page.wait_for_timeout(seconds * 1000 + 1500)
    captured = page.evaluate("studio.capture")
    page.evaluate("studio.capture = null")
    start = page.evaluate("studio.replay.pos")          # the stream position of the take's frame 0
    replayed = np.concatenate([np.asarray(s, np.float32).reshape(-1, 2) for p, s in captured if p >= start])
    out = tmp_path / "render.wav"
    r = subprocess.run([sys.executable, "-m", "scorewright.cli", "render", str(studio.map_path), "--events",
                        str(take_path), "--out", str(out), "--seconds", str(seconds), "--seed", "3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rendered, sr = soundfile.read(out, dtype="int16")
    n = len(rendered)
    assert len(replayed) >= n
    assert np.array_equal(to_int16(replayed[:n]), rendered)        # sample for sample
    # export: the same render, offered for download
    page.click(f'button[data-export="{take}"]')
    page.wait_for_selector("#takes a[download]", timeout=60000)
    href = page.locator("#takes a[download]").get_attribute("href")
    wav = page.evaluate(f"fetch('{href}').then(r => r.arrayBuffer()).then(b => b.byteLength)")
    assert wav > 44 + 4 * n
    page.close()


def test_attached_page_mirrors_the_game_and_overrides_until_release(browser, serve, tmp_path):
    srv = serve(MAPS / "demo.yaml")
    game = srv.wait_ready()
    page = open_page(browser, srv.web_url + "?attach=1", start_audio=False)
    assert "attached" in page.inner_text("#mapname")
    game.set("danger", 0.7, wait=True)                         # the game moves a param...
    page.wait_for_function("studio.snap && studio.snap.targets.danger > 0.69", timeout=10000)
    slider = page.locator('input[data-param="danger"]')       # ...the page mirrors it
    page.wait_for_function("Math.abs(document.querySelector('input[data-param=danger]').value - 0.7) < 0.01")
    slider.fill("0.2")                                          # the designer overrides it
    page.wait_for_function("studio.snap.overrides.param.danger !== undefined", timeout=5000)
    game.set("danger", 0.95, wait=True)                        # the game's value waits aside
    page.wait_for_timeout(600)
    assert game.get_status()["params"]["danger"] < 0.3
    screenshot(page, "studio_attached", tmp_path)
    page.click(".param .release")                               # released: the game's value again
    page.wait_for_function("studio.snap.targets.danger > 0.9", timeout=5000)
    page.close()
    game.close()


def test_studio_messages_come_from_studio_pages_only(serve):
    srv = serve()
    c = srv.wait_ready()
    with pytest.raises(Exception, match="studio_only"):
        c.request("studio.save", text="version: 1\n")
    c.close()


def test_other_sites_cannot_open_the_studio_socket(studio):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    with pytest.raises(InvalidStatus):
        connect(studio.url.replace("http", "ws") + "ws", origin="http://evil.example")
    with connect(studio.url.replace("http", "ws") + "ws", origin=studio.url.rstrip("/")) as ws:
        ws.send(json.dumps({"type": "ping", "id": 1}))
        assert json.loads(ws.recv(timeout=5))["type"] == "ok"


def test_with_a_token_the_page_must_say_it(tmp_path):
    from websockets.sync.client import connect
    map_path = tmp_path / "studio_test.yaml"
    map_path.write_text(STUDIO_MAP)
    s = Studio(map_path, ("--token", "k3y"))
    try:
        with connect(s.url.replace("http", "ws") + "ws") as ws:
            ws.send(json.dumps({"type": "studio.open", "id": 1}))
            assert json.loads(ws.recv(timeout=5))["code"] == "unauthorized"
            ws.send(json.dumps({"type": "hello", "token": "wrong", "id": 2}))
            assert json.loads(ws.recv(timeout=5))["code"] == "unauthorized"
            ws.send(json.dumps({"type": "hello", "token": "k3y", "id": 3, "want_audio": False}))
            assert json.loads(ws.recv(timeout=5))["type"] == "status"
            ws.send(json.dumps({"type": "studio.open", "id": 4}))
            assert json.loads(ws.recv(timeout=5))["type"] == "studio.map"
    finally:
        s.stop()


def test_attach_command_opens_a_running_servers_page(serve):
    srv = serve()
    srv.wait_ready().close()
    ok = subprocess.run([sys.executable, "-m", "scorewright.cli", "studio", "--attach", srv.web_url,
                         "--no-browser"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and f"{srv.web_url}?attach=1" in ok.stderr
    srv.stop()
    gone = subprocess.run([sys.executable, "-m", "scorewright.cli", "studio", "--attach", srv.web_url,
                           "--no-browser"], capture_output=True, text=True, timeout=60)
    assert gone.returncode == 2 and "no studio page" in gone.stderr


def test_hostile_page_messages_get_errors_and_the_page_socket_stays_up(studio):
    from websockets.sync.client import connect
    with connect(studio.url.replace("http", "ws") + "ws") as ws:
        for bad in ("not json", "[" * 100000 + "]" * 100000, json.dumps({"type": "studio.save"}),
                    json.dumps({"type": "studio.replay", "take": "../../etc/passwd"}),
                    json.dumps({"type": "studio.record", "cmd": "erase"})):
            ws.send(bad)
            reply = json.loads(ws.recv(timeout=5))
            assert reply["type"] == "error", reply
        ws.send(b"\x00binary")
        assert json.loads(ws.recv(timeout=5))["code"] == "bad_message"
        ws.send(json.dumps({"type": "ping", "id": 9}))
        assert json.loads(ws.recv(timeout=5))["type"] == "ok"


def test_a_bundled_map_is_copied_before_the_studio_edits_it(tmp_path):
    import os

    from scorewright.cli.serve import editable_copy
    from scorewright.statemap.load import bundled_map
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        copy = editable_copy("demo")
        assert copy == tmp_path.joinpath("demo", "demo.yaml").relative_to(tmp_path)
        assert copy.read_text() == bundled_map("demo").read_text()
        assert (tmp_path / "demo" / "scripts" / "demo.yaml").is_file()
        copy.write_text(copy.read_text() + "# mine\n")
        assert editable_copy("demo") == copy and copy.read_text().endswith("# mine\n")   # kept
        assert editable_copy(str(copy)) == copy                                           # a path as is
    finally:
        os.chdir(cwd)
