"""bench/mrt2_floor.py's step_linears: it sees every linear layer one streaming step runs, in order,
with the input it got (the benchmark replays them to time the step's weight reads alone)."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from mrt2_floor import step_linears  # noqa: E402

from scorewright.backends.mrt2 import linears  # noqa: E402
from scorewright.backends.mrt2 import weights as W  # noqa: E402
from scorewright.backends.mrt2.config import tiny  # noqa: E402
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams  # noqa: E402

CFG = tiny(horizon=4)


@pytest.mark.parametrize("compile", [False, True])
def test_step_linears_records_every_linear_of_a_step_with_its_input(compile):
    model = W.random_depthformer(CFG, std=0.2)
    done = linears.prepare(model, batch=3)
    packed = any("prepacked" in d for d in done)
    s = Sampler(model, guidance=True, compile=compile)
    cond = torch.full((3, CFG.cond_width), 7, dtype=torch.long)
    calls = step_linears(model, lambda: s.step(cond, SamplingParams()))
    t, d, q = CFG.temporal.num_layers, CFG.depth.num_layers, CFG.rvq_levels
    # the encoder's MusicCoCa projection; temporal: qkv, out, cross q, cross kv, cross out, w1, w2;
    # the adapter into every level; depth: qkv, out, w1, w2 per layer and level; one logits head
    # per level where packed
    want = 1 + 7 * t + q + q * 4 * d + (q if packed else 0)
    assert len(calls) == want
    assert calls[0][0] is model.encoder.mc_proj
    assert calls[1][0] is model.temporal[0].self_attn.attn.qkv
    assert calls[1][1].shape == (3, 1, CFG.temporal.d_model)
    layer, x = calls[-1]
    assert layer(x).shape[-1] == (CFG.codebook if packed else CFG.depth.d_model)
    assert int(s.state["step"]) == 1     # recorded during one real step, nothing replayed into the stream
