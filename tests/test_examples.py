"""Every example map validates, renders with its script, and the script exercises all of it."""

import numpy as np
import pytest

from scorewright import analysis
from scorewright.script import load_script
from scorewright.session import open_engine
from scorewright.trace import trace

from .conftest import MAPS

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
