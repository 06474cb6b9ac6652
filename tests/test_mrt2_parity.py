"""Parity with the official JAX implementation (magenta-rt 2.0.3, CPU, fp32, random weights).

tests/fixtures/mrt2_parity.safetensors comes from scripts/make_mrt2_fixtures.py: tiny shapes,
official key layout, official inputs and outputs. Our loaders read the same file."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402

from scorewright.backends.mrt2.sampler import Sampler  # noqa: E402
from scorewright.backends.mrt2.weights import load_depthformer, load_spectrostream  # noqa: E402

from .tolerance import codec_depth, depthformer_depth, rounding_bound  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "mrt2_parity.safetensors"


@pytest.fixture(scope="module")
def ref():
    with safe_open(str(FIXTURE), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if not k.startswith("params/")}


@pytest.fixture(scope="module")
def model():
    return load_depthformer(FIXTURE)


@pytest.fixture(scope="module")
def ours(model, ref):
    with torch.no_grad():
        return model(ref["in/cond"].long(), ref["in/codes"].long() + model.level_offsets)


def close(a, b, depth):
    """a equals the official b up to the rounding of both computations (see tests/tolerance.py)."""
    err = (a.float() - b.float()).abs().max().item()
    scale = b.float().abs().max().item()
    tol = rounding_bound(scale, depth)
    assert err <= tol, f"max abs difference {err:.2e} > {tol:.2e} (scale {scale:.2f}, depth {depth})"


def heads(attn, x):
    return x.unflatten(-1, (attn.h, attn.hd))


def test_encoder_output(model, ours, ref):
    close(ours["encoded"], ref["out/encoded"], depthformer_depth(model))


def test_temporal_layers_projections(model, ours, ref):
    depth = depthformer_depth(model)
    for i, layer in enumerate(model.temporal):
        sa, ca = layer.self_attn, layer.cross_attn
        x = sa.pre_norm(ours[f"temporal_in_{i}"])
        mid = ca.pre_norm(ours[f"temporal_mid_{i}"])
        base = f"out/decoder/temporal_body/x_layers_{i}"
        with torch.no_grad():
            for name, proj in (("query", sa.attn.q), ("key", sa.attn.k), ("value", sa.attn.v)):
                close(heads(sa.attn, proj(x)), ref[f"{base}/self_attention/{name}"], depth)
            close(heads(ca.attn, ca.attn.q(mid)), ref[f"{base}/cross_attention/query"], depth)
            close(heads(ca.attn, ca.attn.k(ours["encoded"])), ref[f"{base}/cross_attention/key"], depth)


def test_depth_layers_projections(model, ours, ref):
    depth = depthformer_depth(model)
    for i, layer in enumerate(model.depth):
        sa = layer.self_attn
        with torch.no_grad():
            x = sa.pre_norm(ours[f"depth_in_{i}"])
            for name, proj in (("query", sa.attn.q), ("key", sa.attn.k), ("value", sa.attn.v)):
                expect = ref[f"out/decoder/depth_body/x_layers_{i}/self_attention/{name}"]
                close(heads(sa.attn, proj(x)), expect, depth)


def test_logits_teacher_forced_and_streamed(model, ours, ref):
    depth = depthformer_depth(model)
    close(ours["logits"], ref["out/logits"], depth)
    s = Sampler(model, batch=2, guidance=False)
    cond, codes = ref["in/cond"].long(), ref["in/codes"].long()
    cb = model.cfg.codebook
    for t in range(cond.shape[1]):
        step = s.teacher_forced_logits(cond[:, t], codes[:, t])
        for level in range(12):
            lo = 6 + level * cb
            close(step[:, level], ref["out/logits"][:, t, level, lo: lo + cb], depth)


def test_spectrostream_decoder_waveform(ref):
    dec = load_spectrostream(FIXTURE)
    codes = ref["in/ss_codes"].long()
    spf = dec.cfg.samples_per_frame
    streamed = torch.cat([dec.decode(codes[:, i: i + 1]) for i in range(codes.shape[1])], dim=1)
    # the official layer drops the lookahead frame; streaming emits silence in its place
    assert streamed[:, :spf].abs().max() == 0
    close(streamed[:, spf:], ref["out/ss_waveform"], codec_depth(dec))
    assert np.isfinite(streamed.numpy()).all()


def test_spectrostream_encoder_embeddings_and_codes(ref):
    from scorewright.backends.mrt2.weights import load_spectrostream_encoder
    enc = load_spectrostream_encoder(FIXTURE, FIXTURE)
    audio = ref["in/ss_audio"]
    with torch.no_grad():
        close(enc.embed(audio), ref["out/ss_embeddings"], codec_depth(enc))
    assert torch.equal(enc.encode(audio), ref["out/ss_codes"].long())
