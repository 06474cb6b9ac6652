"""The sample game plays itself for 30 s against a real `serve` it starts, headless."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scorewright.audio import read_audio
from scorewright.backends.synth import analysis

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


def test_latency_is_measured_for_the_games_messages(autoplay):
    """Message -> first affected sample handed to the sound card (the figures themselves come
    from bench/bench_game_latency.py on a real-time clock; SDL's dummy driver keeps no time)."""
    _, stats = autoplay
    assert stats["latency_count"] >= 100, stats
    assert 0 < stats["latency_ms_p50"] <= stats["latency_ms_p95"] <= stats["latency_ms_max"]


def test_audio_is_continuous(autoplay):
    _, stats = autoplay
    assert stats["frames_played"] >= 27 * 25           # ~29 s of play after the title
    assert stats["stream_lost"] == 0 and stats["underruns"] == 0, stats
    # the speakers never ran dry (how long SDL's audio thread waits between callbacks is a
    # timing figure: bench/bench_game_latency.py reports it on a real-time clock)
    assert stats["gaps"] == 0, stats


def band_profile(pcm: np.ndarray, sr: int = 48000) -> np.ndarray:
    """Long-term spectrum in 24 log bands (40 Hz-16 kHz), level-normalised: a style's colour."""
    mono = pcm.mean(axis=1) * np.hanning(len(pcm))
    power = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / sr)
    edges = np.geomspace(40, 16000, 25)
    bands = np.log10([power[(freqs >= a) & (freqs < b)].sum() + 1e-12
                      for a, b in zip(edges[:-1], edges[1:], strict=True)])
    return bands - bands.mean()


def style_profile(name: str) -> np.ndarray:
    """What music.yaml's style `name` sounds like on its own: 4 s of the synth at its tempo."""
    import yaml

    from scorewright.backends.synth.backend import SynthBackend
    from scorewright.conditioning import Conditioning

    prompt = yaml.safe_load((ROOT / "sample_game" / "music.yaml").read_text())["styles"][name]["prompt"]
    synth = SynthBackend()
    style = synth.embed_text(prompt)
    synth.reset(1)
    pcm = synth.generate(Conditioning(style=style, drums=1, tempo_bpm=synth.preferred_tempo(style)), 125)
    return band_profile(pcm[48000:])


def test_recording_follows_the_game(autoplay):
    out, stats = autoplay
    pcm, sr = read_audio(out / "heard.wav")
    assert sr == 48000 and len(pcm) == stats["samples_played"]

    def window(a: float, b: float) -> np.ndarray:
        return pcm[int(a * sr):int(b * sr)]
    marks = stats["marks"]
    # entering combat: the heard spectrum moves onto the combat style's (distance falls > 2x)
    combat = style_profile("combat")

    def distance_to_combat(a: float, b: float) -> float:
        return float(np.mean([np.linalg.norm(band_profile(window(t, t + 2)) - combat)
                              for t in np.arange(a, b - 1.99, 0.5)]))
    calm = distance_to_combat(max(marks["combat"] - 4, 0.5), marks["combat"])
    fighting = distance_to_combat(marks["combat"] + 1.5, marks["died"])
    assert fighting < 0.5 * calm, (calm, fighting, marks)
    before_death = window(marks["died"] - 2, marks["died"])             # deep in the skirmish
    # heard from the first beat after the death arrives (server lookahead and the game's cushion,
    # then up to a beat: 0.1-0.5 s; one beat later under load) for one bar (~2 s, the tempo gliding
    # toward the cello's): this 1 s window lies inside it either way
    stinger = window(marks["died"] + 1.0, marks["died"] + 2.0)
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


def test_no_sound_card_plays_silently_instead_of_crashing():
    code = """
import time, numpy as np
from sample_game.speaker import Speaker
class Stream:
    position = 0
    def available(self): return 10**6
    def read(self, n): return np.zeros((n, 2), np.float32)
    def skip(self, keep): pass
speaker = Speaker(Stream(), 1920)
speaker.start(); time.sleep(0.5); speaker.close()
print(speaker.samples_played)
"""
    env = {**os.environ, "SDL_AUDIODRIVER": "no-such-driver"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "playing silently" in r.stderr and int(r.stdout.split()[-1]) > 0.3 * 48000
