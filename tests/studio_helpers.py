"""A real Chromium (Debian's, driven by Playwright) and a real `scorewright studio` for the
studio's tests and bench."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from scorewright.transport import free_ports

CHROMIUM_ARGS = ["--autoplay-policy=no-user-gesture-required", "--no-sandbox"]
STUDIO_MAP = """version: 1
name: studio_test
seed: 3
tempo: 120
styles:
  calm: {prompt: "calm ambient synth pads, soft piano", weight: 1}
  cave: {prompt: "dark horror drones, eerie dissonant atmosphere"}
  combat: {prompt: "driving orchestral percussion, urgent strings, battle"}
params:
  danger: {min: 0, max: 1, default: 0, smooth_ms: 200}
states:
  area: [forest, cave]
rules:
  - name: in_cave
    when: "area == 'cave'"
    blend: {cave: 1}
    transition: {at: bar, fade_ms: 0}
  - name: fight
    when: "danger > 0.6"
    blend: {combat: 1}
    priority: 1
    drums: on
    transition: {at: beat, fade_ms: 0}
stingers:
  hit: {prompt: "brass stab, timpani hit", beats: 2}
"""


def chromium_path() -> str:
    """Debian's Chromium; outside CI a missing one skips the test with the command to get it."""
    path = (os.environ.get("SCOREWRIGHT_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser"))
    if path is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs Chromium for the studio tests: apt-get install chromium")
        pytest.skip("the studio tests need Chromium: apt-get install chromium")
    return path


class Studio:
    """`scorewright studio MAP --no-browser` on free ports with its own ring."""

    def __init__(self, map_path: Path, extra: tuple[str, ...] = ()) -> None:
        self.web, self.control, self.audio = free_ports(3)
        self.url = f"http://127.0.0.1:{self.web}/"
        self.map_path = map_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scorewright.cli", "studio", str(map_path), "--no-browser",
             "--web-port", str(self.web), "--control-port", str(self.control),
             "--audio-port", str(self.audio), "--tcp-port", "0", "--ring", f"studio-{uuid.uuid4().hex[:8]}",
             *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=1).read(10)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("studio exited early:\n" + self.proc.stdout.read()) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def control_addr(self) -> str:
        return f"tcp://127.0.0.1:{self.control}"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[0]


def open_page(browser, url: str, start_audio: bool = True):
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.studio && window.studio.map !== null", timeout=20000)
    if start_audio:
        page.click("#start")
        page.wait_for_function("window.studio.worklet && window.studio.worklet.playing", timeout=20000)
    return page


def screenshot(page, name: str, folder: Path) -> Path:
    """Save a screenshot (SCOREWRIGHT_SCREENSHOTS=dir keeps them, e.g. for docs/images)."""
    out = Path(os.environ.get("SCOREWRIGHT_SCREENSHOTS", folder))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    return path
