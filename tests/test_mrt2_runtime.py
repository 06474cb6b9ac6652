"""The mrt2 backend against the official runtime (magenta-rt 2.0.3) around the model: conditioning
ids, guided sampling given the same Gumbel noise, the stream after the silence prefill, MusicCoCa
preprocessing (with and without the mapper), resampling and the blend rule.

tests/fixtures/mrt2_runtime.safetensors comes from scripts/make_mrt2_fixtures.py (see
scripts/mrt2_runtime_fixtures.py for what each part calls); the model is the tiny depthformer of
tests/fixtures/mrt2_parity.safetensors. Tokens are compared exactly, after checking that the
decision is robust: the sampled code beats every code that could compete by more than the
rounding both sides' logits may carry (tests/tolerance.py), so no rounding difference can flip it.
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402

from scorewright.backends.mrt2 import tokens  # noqa: E402
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams  # noqa: E402
from scorewright.backends.mrt2.weights import load_depthformer  # noqa: E402
from scorewright.conditioning import Conditioning  # noqa: E402

from .tolerance import EPS32, depthformer_depth, rounding_bound  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
RUNTIME, PARITY = FIXTURES / "mrt2_runtime.safetensors", FIXTURES / "mrt2_parity.safetensors"


@pytest.fixture(scope="module")
def ref():
    with safe_open(str(RUNTIME), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.fixture(scope="module")
def model():
    return load_depthformer(PARITY)


def test_the_runtime_fixture_streams_the_parity_model(ref):
    h = hashlib.sha256()
    with safe_open(str(PARITY), framework="np") as f:
        for k in sorted(k for k in f.keys() if k.startswith("params/depthformer/")):
            h.update(k.encode())
            h.update(np.ascontiguousarray(f.get_tensor(k), np.float32).tobytes())
    assert h.hexdigest() == ref[1]["depthformer_weights_sha256"]
    assert ref[1]["official"] == "magenta-rt[jax]==2.0.3"


def conditioning(style, notes, drums, scales) -> Conditioning:
    return Conditioning(style=np.zeros(768, np.float32), style_tokens=style, notes=notes, drums=int(drums),
                        cfg_style=float(scales[0]), cfg_notes=float(scales[1]), cfg_drums=float(scales[2]))


def test_conditioning_ids_match_the_official_builder(ref):
    """Guidance scales from -2 to 99 (bin edges, a round-half-to-even case, the aliased top bins),
    note states -1..3, drums -1/0/1, style tokens with masked levels: all 144 ids of the three
    branches, with 12 style levels (Python systems) and 6 (C++ runtime)."""
    r = ref[0]
    for i in range(len(r["cond/scales"])):
        c = conditioning(r["cond/style"][i], r["cond/notes"][i], r["cond/drums"][i], r["cond/scales"][i])
        full = tokens.encode(c, style_levels=12, onsets="unmask")
        assert np.array_equal(tokens.branches(full, True), r["cond/ids"][i]), (i, r["cond/scales"][i])
        assert np.array_equal(tokens.encode(c, onsets="unmask"), r["cond/ids_6_levels"][i]), i


def test_the_encoder_reads_every_id_as_the_official_one_does(ref, model):
    """All 120 branches of the grid, the top guidance bins (ids 47 and 15, past their tables'
    ends) included, through the parity model's conditioning encoder."""
    r = ref[0]
    ids = torch.from_numpy(r["cond/ids"]).long()
    assert (ids[..., 141:143] == 47).any() and (ids[..., 143] == 15).any()
    with torch.no_grad():
        ours = model.encoder(ids)
    expect = torch.from_numpy(r["cond/encoded"])
    assert (ours - expect).abs().max() <= rounding_bound(float(expect.abs().max()), depthformer_depth(model))


def robust_argmax(guided: torch.Tensor, noise: torch.Tensor, temperature: float, k: int, err: float) -> int:
    """Our sample of one level if no logit error up to `err` could change it, else -1: it must be
    in the official top-k for sure and beat every code that might be in it by > 2 x error."""
    g, n = guided.double(), noise.double()
    k = min(k, len(g))
    kept = g >= g.sort(descending=True).values[k - 1]
    p = g + temperature * n
    w = int(torch.where(kept, p, -torch.inf).argmax())
    higher = (g > g[w] - 2 * err).sum() - 1              # codes that might rank above w officially
    might = torch.tensor([(g > g[j] + 2 * err).sum() < k for j in range(len(g))])
    might[w] = False
    perr = err + 2 * EPS32 * float(p.abs().max())       # + the noise product and sum, both sides
    if higher >= k or (might.any() and p[w] - p[might].max() <= 2 * perr):
        return -1
    return w


def step_checked(s: Sampler, model, cond: torch.Tensor, params: SamplingParams, noise: torch.Tensor,
                 expect: np.ndarray, official: np.ndarray) -> torch.Tensor:
    """One frame against the official one: the three branches' logits (given the official
    tokens, as the official step had them) within the parity bound; every level's decision
    robust to the logits' measured difference, amplified by guidance (1 + 2|w_style| + 2|w_notes|)
    plus the guidance's own rounding; then the real step with the same noise."""
    snap = s.save()
    s._load_inputs(cond, params)          # the guidance weights _guide reads
    logits = s.teacher_forced_logits(cond, torch.from_numpy(expect)[None].long())
    s.restore(snap)
    ref = model.soft_cap(torch.from_numpy(official)).transpose(0, 1)      # [branches, 12, codebook]
    scale, diff = float(ref.abs().max()), float((logits - ref).abs().max())
    assert diff <= rounding_bound(scale, depthformer_depth(model))
    w = 1 + 2 * abs(params.cfg_style) + 2 * abs(params.cfg_notes)
    err = w * diff + rounding_bound(w * scale, 5)
    for level in range(12):
        guided = s._guide(logits[:, level])[0]
        pick = robust_argmax(guided, noise[0, level], params.temperature, params.top_k, err)
        assert pick == expect[level], f"level {level}: robust pick {pick}, official {expect[level]}"
    return s.step(cond, params, noise=noise)[0]


def settings(row) -> SamplingParams:
    return SamplingParams(temperature=float(row[0]), top_k=int(row[1]), cfg_style=float(row[2]),
                          cfg_notes=float(row[3]))


def test_guided_sampling_matches_the_official_sampler(ref, model):
    """Eight frames from the start state: guidance over three branches, top-k (100 > codebook,
    then 5), temperature (1.0, then 1.1), both official profiles' scales; identical tokens."""
    r = ref[0]
    s = Sampler(model, guidance=True)
    for i, row in enumerate(r["sampler/settings"]):
        c = conditioning(r["sampler/style"][i], r["sampler/notes"][i], r["sampler/drums"][i], row[2:])
        ids = tokens.branches(tokens.encode(c, style_levels=12, onsets="unmask"), True)
        assert np.array_equal(ids, r["sampler/ids"][i])
        noise = torch.from_numpy(r["sampler/noise"][i])[None]
        got = step_checked(s, model, torch.from_numpy(ids), settings(row), noise, r["sampler/tokens"][i],
                           r["sampler/logits"][i])
        assert np.array_equal(got.numpy(), r["sampler/tokens"][i]), i


def test_the_stream_after_the_official_silence_prefill(ref, model):
    """The official forced-token prefill (no start frame in the caches), then four frames: every
    frame's logits of all three branches within the parity bound, identical tokens."""
    r = ref[0]
    s = Sampler(model, guidance=True)
    pre = torch.from_numpy(r["prefill/ids"])
    n = int(r["prefill/frames"][0])   # 7: past the window, within the receptive field (2 layers x 5
    # frames), so a start frame left in the caches would show
    s.prefill(pre[:, None].expand(-1, n - 1, -1), torch.from_numpy(r["prefill/silent"]).long().expand(n, -1))
    assert int(s.state["step"]) == n - 1
    ids = torch.from_numpy(r["sampler/ids"][-1])
    params = settings(r["sampler/settings"][-1])
    for i, expect in enumerate(r["prefill/tokens"]):
        noise = torch.from_numpy(r["prefill/noise"][i])[None]
        got = step_checked(s, model, ids, params, noise, expect, r["prefill/logits"][i])
        assert np.array_equal(got.numpy(), expect), i
