"""The sample game plays itself for 30 s against a real `serve` it starts, headless."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scorewright import analysis
from scorewright.audio import read_audio

from .conftest import ROOT

pygame = pytest.importorskip("pygame", reason="the sample game needs pygame (pip install -e '.[game]')")


@pytest.fixture(scope="module")
def autoplay(tmp_path_factory):
    out = tmp_path_factory.mktemp("game")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    cmd = [sys.executable, "-m", "sample_game", "--autoplay", "30", "--record", str(out / "heard.wav"),
           "--screenshots", str(out), "--stats", str(out / "stats.json")]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads((out / "stats.json").read_text())


def test_bot_plays_everything_at_full_frame_rate(autoplay):
    _, stats = autoplay
    assert stats["deaths"] == 1 and stats["won"], stats
    assert stats["fps_avg"] >= 55, stats
    assert stats["started_server"] and stats["underruns"] == 0


def test_audio_is_continuous(autoplay):
    _, stats = autoplay
    assert stats["frames_played"] >= 27 * 25           # ~29 s of play after the title
    assert stats["stream_lost"] == 0 and stats["underruns"] == 0, stats


def test_recording_follows_the_game(autoplay):
    out, stats = autoplay
    pcm, sr = read_audio(out / "heard.wav")
    assert sr == 48000 and len(pcm) == stats["frames_played"] * 1920

    def window(a: float, b: float) -> np.ndarray:
        return pcm[int(a * sr):int(b * sr)]
    marks = stats["marks"]
    before_death = window(marks["died"] - 2, marks["died"])             # deep in the skirmish
    stinger = window(marks["died"] + 0.8, marks["died"] + 2.0)
    # the death stinger (a sad solo cello) drops the drums and cymbals at once
    assert analysis.high_band_share(stinger) < 0.5 * analysis.high_band_share(before_death), marks


def test_screenshots_are_not_blank(autoplay):
    out, _ = autoplay
    for name in ("title.png", "hud_combat.png"):
        img = pygame.surfarray.array3d(pygame.image.load(str(out / name)))
        assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 20, name


def test_game_stops_the_server_it_started(autoplay):
    _, stats = autoplay
    assert stats["ring"] and not Path(stats["ring"]).exists()


def test_connects_to_a_running_server_over_zmq(serve, tmp_path):
    srv = serve(ROOT / "sample_game" / "music.yaml")
    srv.wait_ready().close()
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    cmd = [sys.executable, "-m", "sample_game", "--autoplay", "6", "--connect", srv.control_addr,
           "--transport", "zmq", "--stats", str(tmp_path / "stats.json")]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["transport"] == "zmq" and not stats["started_server"]
    assert stats["frames_played"] >= 4 * 25, stats
    assert stats["stream_lost"] == 0, stats
    assert srv.proc.poll() is None               # a server the game did not start keeps running
