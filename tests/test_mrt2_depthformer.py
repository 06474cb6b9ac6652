"""MRT2 depthformer: streaming vs teacher forcing, state save/restore, seeded sampling, guidance,
conditioning ids, and the official checkpoint layout (tiny random configs; no real weights here)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.numpy import save_file  # noqa: E402

from scorewright.backends.mrt2 import tokens  # noqa: E402
from scorewright.backends.mrt2 import weights as W  # noqa: E402
from scorewright.backends.mrt2.config import BASE, SMALL, tiny  # noqa: E402
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams  # noqa: E402
from scorewright.conditioning import Conditioning  # noqa: E402

from .tolerance import depthformer_depth, rounding_bound  # noqa: E402

CFG = tiny(horizon=4)


@pytest.fixture(scope="module")
def model():
    return W.random_depthformer(CFG, std=0.2)


def random_cond(g, t, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(6, 11, (g, t, CFG.cond_width), generator=gen)


def random_codes(b, t, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, CFG.codebook, (b, t, CFG.rvq_levels), generator=gen)


def test_streaming_matches_teacher_forced_pass_beyond_the_window(model):
    t = 11  # more than horizon + 1 frames, so the ring buffers wrap
    cond, codes = random_cond(3, t), random_codes(1, t)
    ids = (codes + model.level_offsets).expand(3, -1, -1)
    with torch.no_grad():
        full = model(cond, ids)["logits"]
    s = Sampler(model, guidance=True)
    tol = rounding_bound(full.abs().max(), depthformer_depth(model))
    for i in range(t):
        step = s.teacher_forced_logits(cond[:, i], codes[:, i])
        for level in range(CFG.rvq_levels):
            lo = 6 + level * CFG.codebook
            ref = full[:, i, level, lo: lo + CFG.codebook]
            assert (step[:, level] - ref).abs().max() <= tol, (i, level)


def test_prefill_is_the_official_forced_token_history(model):
    """prefill(codes[0..7]): frames 0..6 enter the caches as inputs and frame 7 is left as the
    previous frame; the start frame never enters them (the official forced-token prefill)."""
    cond, codes = random_cond(1, 9), random_codes(1, 9)
    a, b = Sampler(model, guidance=False), Sampler(model, guidance=False)
    a.prefill(cond[:, :7], codes[0, :8])
    b._set_prev(codes[:, 0] + model.level_offsets)
    for i in range(7):                    # teacher forcing sets the previous frame to the frame given
        b.teacher_forced_logits(cond[:, i], codes[:, i + 1])
    assert int(a.state["step"]) == 7 and torch.equal(a.state["prev"], b.state["prev"])
    assert torch.equal(a.teacher_forced_logits(cond[:, 8], codes[:, 8]),
                       b.teacher_forced_logits(cond[:, 8], codes[:, 8]))


def run(s, cond, n, params=None):
    params = params or SamplingParams()
    return torch.stack([s.step(cond, params) for _ in range(n)])


def test_seeded_sampling_is_reproducible_and_seeds_differ(model):
    cond = random_cond(3, 1)[:, 0]
    a = run(Sampler(model, seed=3), cond, 6)
    b = run(Sampler(model, seed=3), cond, 6)
    c = run(Sampler(model, seed=4), cond, 6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() < CFG.codebook and a.shape == (6, 1, 12)


def test_save_restore_resumes_bit_exactly(model):
    cond = random_cond(3, 1)[:, 0]
    s = Sampler(model, seed=5)
    run(s, cond, 7)                       # past the window, so the rings have wrapped
    snap = s.save()
    first = run(s, cond, 5)
    run(s, cond, 3)                       # wander off
    s.restore(snap)
    assert torch.equal(run(s, cond, 5), first)
    s.reset(seed=5)
    assert not s.state["valid"].any() and int(s.state["step"]) == 0


def test_guidance_with_zero_weights_equals_the_unguided_pass(model):
    full = random_cond(1, 1)[:, 0]
    guided = Sampler(model, guidance=True, seed=9)
    plain = Sampler(model, guidance=False, seed=9)
    branches = torch.from_numpy(tokens.branches(full[0].numpy(), True))
    codes = random_codes(1, 1)[:, 0]
    g_logits = guided.teacher_forced_logits(branches, codes)
    p_logits = plain.teacher_forced_logits(full, codes)
    # the full branch of the guided batch is the unguided pass (up to the kernels' rounding for
    # another batch size), and zero weights leave it exactly as it is
    tol = rounding_bound(p_logits.abs().max(), depthformer_depth(model))
    assert (g_logits[0] - p_logits[0]).abs().max() <= tol
    guided.scales.zero_()
    for level in range(CFG.rvq_levels):
        assert torch.equal(guided._guide(g_logits[:, level]), g_logits[:1, level])
    # non-zero weights change the sampled tokens
    guided.reset(seed=9)
    plain.reset(seed=9)
    assert not torch.equal(run(guided, branches, 6, SamplingParams(cfg_style=4.0)), run(plain, full, 6))


def test_guidance_formula_and_top1_sampling(model):
    s = Sampler(model, guidance=True)
    s.scales.copy_(torch.tensor([2.0, 0.5]))
    logits = torch.randn(3, CFG.codebook)
    guided = s._guide(logits)
    expect = logits[0] + 2.0 * (logits[0] - logits[1]) + 0.5 * (logits[0] - logits[2])
    # the same five terms summed in another order: terms up to (1 + 2 * 2 + 0.5 * 2) x max |logit|
    assert (guided[0] - expect).abs().max() <= rounding_bound(6 * logits.abs().max(), 5)
    s._load_inputs(random_cond(3, 1)[:, 0], SamplingParams(top_k=1))
    s.noise.normal_(0, 100)   # whatever the noise, top-1 leaves one candidate
    assert int(s._sample(guided, 0)[0]) == int(expect.argmax())


def test_top_k_keeps_ties_the_same_with_topk_and_with_sort(model):
    """Eager steps take top-k with topk, CUDA graphs and compiled steps with a full sort read
    from a tensor: the same threshold, ties included, so the same tokens."""
    eager, graphed = Sampler(model, guidance=False), Sampler(model, guidance=False)
    graphed._k = None                             # the form a graph or a compiled step uses
    gen = torch.Generator().manual_seed(0)
    logits = torch.randint(-3, 4, (1, CFG.codebook), generator=gen).float()   # many ties
    for k in (1, 2, 5, 17, CFG.codebook):
        for s in (eager, graphed):
            s._load_inputs(random_cond(1, 1)[:, 0], SamplingParams(top_k=k))
        picks = set()
        for trial in range(20):
            noise = torch.empty(1, CFG.rvq_levels, CFG.codebook).exponential_(generator=gen).log_().neg_()
            eager.noise.copy_(noise)
            graphed.noise.copy_(noise)
            a, b = eager._sample(logits, 0), graphed._sample(logits, 0)
            assert torch.equal(a, b), (k, trial)
            picks.add(int(a))
        kth = logits.sort(descending=True).values[0, k - 1]
        assert all(logits[0, p] >= kth for p in picks)   # never below the k-th largest


def test_conditioning_ids_follow_the_official_layout():
    notes = np.full(128, -1, dtype=np.int8)
    notes[60], notes[64], notes[67] = 2, 1, 0
    c = Conditioning(style=np.zeros(768, np.float32), notes=notes, drums=0,
                     style_tokens=np.arange(100, 112), cfg_style=3.0, cfg_notes=5.0, cfg_drums=1.0)
    ids = tokens.encode(c)
    assert ids.shape == (144,)
    assert list(ids[:6]) == [107, 108, 109, 110, 111, 112] and set(ids[6:12]) == {6}  # fine levels masked
    # the runtime's default onset mode: every sounding pitch is "on, the model decides" (3 + 7)
    assert ids[12 + 60] == 10 and ids[12 + 64] == 10 and ids[12 + 67] == 7 and ids[12 + 0] == 6
    unmasked = tokens.encode(c, onsets="unmask")
    assert unmasked[12 + 60] == 9 and unmasked[12 + 64] == 8 and unmasked[12 + 67] == 7
    assert ids[140] == 7                                   # drumless
    assert list(ids[141:]) == [20 + 7, 30 + 7, 2 + 7]      # bins of 3.0, 5.0 (step .2) and 1.0 (step 1), + 7
    assert tokens.encode(c, style_levels=12)[11] == 111 + 7
    br = tokens.branches(ids, True)
    assert (br[1, :12] == 6).all() and (br[1, 12:] == ids[12:]).all()
    assert (br[2, 12:140] == 6).all() and (br[2, :12] == ids[:12]).all() and br[2, 140] == 7
    assert tokens.cfg_bin(99, 0.2, 40) == 40 and tokens.cfg_bin(-5, 1.0, 8) == 0
    with pytest.raises(ValueError, match="onsets must be one of mask, unmask"):
        tokens.encode(c, onsets="sometimes")


def test_top_guidance_bins_read_the_rows_the_official_runtime_reads(model):
    """bin + 7 overflows the 47- and 15-row guidance tables at the top bin, officially too: the
    style scale's top id is the notes scale's row 0, the drums scale's top id a padding row."""
    enc = model.encoder
    top = tokens.cfg_ids(7.0, 7.0, 7.0)
    assert top == [47, 47, 15]
    row = enc.regular_offsets[129:] + torch.tensor(top)       # channels 141..143 of the 144
    assert int(row[0]) == int(enc.regular_offsets[130]) and int(row[1]) == int(enc.regular_offsets[131])
    assert int(row[2]) == sum(g.channels * g.vocab for g in CFG.regular_channels) < CFG.regular_vocab
    ids = tokens.encode(Conditioning(style=np.zeros(768, np.float32), cfg_style=7, cfg_notes=7, cfg_drums=7))
    with torch.no_grad():
        assert torch.isfinite(enc(torch.from_numpy(ids)[None])).all()


def test_real_sizes_have_the_official_parameter_counts():
    def count(cfg):
        return sum(int(np.prod(e.shape)) for e in W.depthformer_layout(cfg))
    assert 225e6 < count(SMALL) < 235e6      # "230M small"
    assert 2.35e9 < count(BASE) < 2.45e9     # "2.4B base"


def write(tmp_path, state, name="ckpt.safetensors"):
    path = tmp_path / name
    save_file(state, str(path))
    return path


def test_official_checkpoint_round_trip(model, tmp_path):
    path = write(tmp_path, W.official_state(model))
    loaded = W.load_depthformer(path, CFG)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(p.is_contiguous() for p in loaded.parameters())   # not strided views of the file
    bf16 = W.load_depthformer(path, CFG, dtype=torch.bfloat16)
    assert next(bf16.parameters()).dtype == torch.bfloat16


def test_checkpoint_errors_name_the_key(model, tmp_path):
    state = W.official_state(model)
    key = next(k for k in state if k.endswith("x_layers_1/ffn/ffn_layer1/kernel"))
    bad = dict(state)
    bad[key] = np.zeros((3, 3), np.float32)
    with pytest.raises(W.CheckpointError, match=r"layer1/kernel' has shape \[3, 3\], expected"):
        W.load_depthformer(write(tmp_path, bad, "bad.safetensors"), CFG)
    missing = {k: v for k, v in state.items() if "sink_key" not in k}
    with pytest.raises(W.CheckpointError, match="missing '.*sink_key_embeddings'"):
        W.load_depthformer(write(tmp_path, missing, "missing.safetensors"), CFG)
    with pytest.raises(W.CheckpointError, match="known sizes: small"):
        W.load_depthformer(write(tmp_path, state, "tiny.safetensors"))   # size detection names the options
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(W.CheckpointError, match="not a readable safetensors file"):
        W.load_depthformer(tmp_path / "junk.safetensors", CFG)


def test_fused_projections_are_accepted(model, tmp_path):
    state = W.official_state(model)
    for key in [k for k in state if k.endswith("self_attention/attention/query_projection/kernel")]:
        base = key.rsplit("/", 2)[0]
        parts = [state.pop(f"{base}/{p}_projection/kernel") for p in ("query", "key", "value")]
        state[f"{base}/query_key_value_projection/kernel"] = np.stack(parts, axis=1)
    loaded = W.load_depthformer(write(tmp_path, state), CFG)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in loaded.state_dict().items())
