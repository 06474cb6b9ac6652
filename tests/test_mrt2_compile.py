"""torch.compile of the streaming step on the CPU (SCOREWRIGHT_MRT2_COMPILE=1): one compiled graph
per region (a temporal layer, a depth level) serves every layer and level, the prepacked linears go
through as an opaque operation, and the logits equal the eager step's within the rounding bound."""

import shutil

import pytest

torch = pytest.importorskip("torch")

from torch._dynamo.utils import counters  # noqa: E402

from scorewright.backends.mrt2 import linears  # noqa: E402
from scorewright.backends.mrt2 import weights as W  # noqa: E402
from scorewright.backends.mrt2.config import tiny  # noqa: E402
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams  # noqa: E402

from .tolerance import depthformer_depth, rounding_bound  # noqa: E402

CFG = tiny(horizon=3)


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="inductor needs a C++ compiler (apt install g++)")
def test_the_compiled_cpu_step_computes_what_the_eager_step_computes():
    model = W.random_depthformer(CFG, std=0.2)
    linears.prepare(model, batch=3)
    eager, compiled = Sampler(model, seed=2), Sampler(model, seed=2, compile=True)   # own states
    gen = torch.Generator().manual_seed(1)
    steps = CFG.horizon + 3                                  # past the ring buffer's wrap
    cond = torch.randint(6, 11, (3, steps, CFG.cond_width), generator=gen)
    codes = torch.randint(0, CFG.codebook, (1, steps, CFG.rvq_levels), generator=gen)
    graphs = counters["stats"]["unique_graphs"]
    for t in range(steps):
        want = eager.teacher_forced_logits(cond[:, t], codes[:, t])
        got = compiled.teacher_forced_logits(cond[:, t], codes[:, t])
        assert (got - want).abs().max() <= rounding_bound(want.abs().max(), depthformer_depth(model))
    assert counters["stats"]["unique_graphs"] - graphs == 2   # not one per layer or per level
    ids = cond[:, 0]
    assert compiled.step(ids, SamplingParams()).shape == (1, CFG.rvq_levels)
