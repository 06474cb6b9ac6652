"""Every example map validates, renders with its script, and the script exercises all of it."""

import numpy as np
import pytest

from scorewright.backends.synth import analysis
from scorewright.script import load_script
from scorewright.session import open_engine
from scorewright.trace import trace

from .conftest import MAPS
from .tolerance import unit_norm_bound

EXAMPLES = ["demo", "platformer", "horror_stealth", "open_world"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_script_exercises_every_rule_and_stinger(name):
    items, _ = load_script(MAPS / "scripts" / f"{name}.yaml")
    engine = open_engine(MAPS / f"{name}.yaml")
    rows = trace(engine, 50.0, items)
    smap = engine.director.map
    active = {r for row in rows for r in row.rules}
    assert active == {r.name for r in smap.rules}
    started = {m.split(":", 1)[1] for row in rows for m in row.markers if m.startswith("stinger:")}
    assert started == set(smap.stingers)


@pytest.mark.parametrize("name", EXAMPLES[1:])
def test_example_renders(name):
    items, _ = load_script(MAPS / "scripts" / f"{name}.yaml")
    engine = open_engine(MAPS / f"{name}.yaml")
    pcm = engine.render(12.0, items)
    assert pcm.shape == (12 * 48000, 2)
    assert analysis.rms(pcm) > 0.01 and np.abs(pcm).max() < 1.0


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_audio_prompt_styles(tmp_path, synth, fmt):
    from dataclasses import replace

    import soundfile

    from scorewright.backends.synth.presets import PRESETS
    from scorewright.conditioning import Conditioning
    style = synth.embed_text(PRESETS[2].description)          # a chiptune clip as the prompt
    synth.reset(0)
    tempo, beat, frames = synth.preferred_tempo(style), 0.0, []
    for _ in range(150):
        frames.append(synth.generate(replace(Conditioning(style=style, tempo_bpm=tempo), beat=beat)))
        beat += tempo / 60 * 0.04
    clip = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(clip, np.concatenate(frames), 48000, format=fmt)
    (tmp_path / "map.yaml").write_text(f"version: 1\nstyles:\n  clip: {{audio: {clip.name}, weight: 1}}\n")
    engine = open_engine(tmp_path / "map.yaml")
    clip_style = engine.director.embeddings["clip"]
    assert abs(float(np.linalg.norm(clip_style)) - 1) <= unit_norm_bound(len(clip_style))
    assert engine.render(2.0).shape == (96000, 2)


def test_trace_command_prints_changes_and_plots(tmp_path):
    import subprocess
    import sys
    png = tmp_path / "trace.png"
    r = subprocess.run([sys.executable, "-m", "scorewright.cli", "trace", str(MAPS / "horror_stealth.yaml"),
                        "--events", str(MAPS / "scripts" / "horror_stealth.yaml"), "--seconds", "30",
                        "--plot", str(png)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("transition:hunted:on" in line for line in lines)
    assert any("stinger:jumpscare" in line for line in lines)
    assert sum("stinger:jumpscare" in line for line in lines) == 1     # the repeat is in cooldown
    assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
