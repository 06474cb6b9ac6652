"""The CPU linears of linears.py: the prepacked ones compute what nn.Linear computes (the model as a
whole streams the same logits within the float32 rounding bound), and weight-only int8 stays within
its derived bound per layer, at a real MRT2 small layer's shape."""

import copy
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from scorewright.backends.mrt2 import linears  # noqa: E402
from scorewright.backends.mrt2 import weights as W  # noqa: E402
from scorewright.backends.mrt2.config import SMALL, TransformerSpec, tiny  # noqa: E402
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams  # noqa: E402

from .tolerance import BF16, EPS32, depthformer_depth, low_precision_bound, rounding_bound  # noqa: E402

CFG = tiny(horizon=4)
needs_packing = pytest.mark.skipif(not linears.packing_works(torch.float32),
                                   reason="this PyTorch build cannot prepack oneDNN linears")


def streams(model, cond, codes):
    s = Sampler(model, guidance=True)
    return torch.stack([s.teacher_forced_logits(cond[:, i], codes[:, i]) for i in range(codes.shape[1])])


@pytest.mark.parametrize("pack", [pytest.param(True, marks=needs_packing), False])
def test_a_prepared_model_streams_the_same_logits_and_tokens(pack):
    ref = W.random_depthformer(CFG, std=0.2)
    fast = copy.deepcopy(ref)
    done = linears.prepare(fast, batch=3, pack=pack)
    assert "fused attention projections" in done
    self_attn, cross_attn = fast.temporal[0].self_attn.attn, fast.temporal[0].cross_attn.attn
    assert hasattr(self_attn, "qkv") and not hasattr(self_attn, "k")
    assert hasattr(fast.depth[0].self_attn.attn, "qkv")
    assert hasattr(cross_attn, "kv") and hasattr(cross_attn, "q") and not hasattr(cross_attn, "v")
    if pack:
        assert len(fast.level_heads) == CFG.rvq_levels
        assert type(fast.temporal[0].ffn.act) is torch.nn.Identity          # GELU fused into w1
    gen = torch.Generator().manual_seed(0)
    cond = torch.randint(6, 11, (3, 8, CFG.cond_width), generator=gen)
    codes = torch.randint(0, CFG.codebook, (1, 8, CFG.rvq_levels), generator=gen)
    want, got = streams(ref, cond, codes), streams(fast, cond, codes)
    assert (got - want).abs().max() <= rounding_bound(want.abs().max(), depthformer_depth(ref))
    with torch.no_grad():                      # the teacher-forced pass (4-d inputs) still runs
        full = ref(cond, codes.expand(3, -1, -1) + ref.level_offsets)["logits"]
        assert (fast(cond, codes.expand(3, -1, -1) + ref.level_offsets)["logits"] - full).abs().max() \
            <= rounding_bound(full.abs().max(), depthformer_depth(ref))
    a, b = Sampler(ref, seed=4), Sampler(fast, seed=4)
    ids = cond[:, 0]
    assert all(torch.equal(a.step(ids, SamplingParams()), b.step(ids, SamplingParams())) for _ in range(3))


def int8_bound(x: torch.Tensor, lin: torch.nn.Linear, q: linears.Int8Linear) -> torch.Tensor:
    """|int8 layer - float64 layer| per output: every weight is off by at most scale[n] (1/2 + 128 EPS32), so
    the sum by sum_i |x_i| scale[n] (1/2 + 128 EPS32) = E; the float32 accumulation adds fan_in x EPS32 x A
    (A = sum |x_i w_i| + |b|); the product rounds to x's dtype, then adding the bias rounds again
    (unit roundoff u of bf16 or float32): 2 u (A + E), twice for safety with the scale's rounding."""
    x, w, b = x.double(), lin.weight.double(), lin.bias.double()
    a = x.abs() @ w.abs().T + b.abs()
    e = x.abs().sum(-1, keepdim=True) * q.scale.double() * (0.5 + 128 * EPS32)
    u = BF16 if q.scale.dtype == torch.bfloat16 else EPS32
    return e + 4 * u * (a + e) + rounding_bound(1.0, w.shape[1], sides=1) * a


def real_layer(d_in: int, d_out: int, dtype: torch.dtype, seed: int) -> tuple[torch.nn.Linear, torch.Tensor]:
    """A random linear layer of a real MRT2 shape in `dtype`, and a 3-row input for it."""
    lin = torch.nn.Linear(d_in, d_out)
    W.randomise(lin, std=0.05, seed=seed)
    x = torch.randn(3, 1, d_in, generator=torch.Generator().manual_seed(seed + 1))
    return lin.to(dtype), x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_weights_stay_within_half_a_step_at_a_real_layer_shape(dtype):
    t = SMALL.temporal
    lin, x = real_layer(t.d_model, t.d_ff, dtype, seed=1)    # the temporal feed-forward's first layer
    q = linears.Int8Linear(lin)
    w = q.q.double() * q.scale.double()[:, None]
    # w / s is computed in float32: off by up to 128 EPS32 steps near a tie
    assert ((w - lin.weight.double()).abs() <= q.scale.double()[:, None] * (0.5 + 128 * EPS32)).all()
    with torch.no_grad():
        got = q(x).double()
        want = x.double() @ lin.weight.double().T + lin.bias.double()
    bound = int8_bound(x, lin, q)
    assert ((got - want).abs() <= bound).all()
    assert (got - want).abs().max() > 0                 # int8 did round something


def int4_reference(lin: torch.nn.Linear, q: linears.Int4Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight Int4Linear should multiply by, in float64, from its stored (rounded) scales and
    offsets and the codes its formula gives; and the per-weight bound on |that - lin.weight|: the
    code rounds by half a step (s / 2, plus float32 slop in computing it), and the stored scale and
    offset are rounded to the model's dtype (unit roundoff u): |q - 8| <= 8 steps of u s, plus u |o|,
    doubled for the rounding of s itself."""
    w, g = lin.weight.detach().float(), q.group
    groups = w.view(q.out_features, -1, g)
    low = groups.amin(-1)
    s32 = ((groups.amax(-1) - low) / 15).clamp(min=torch.finfo(torch.float32).tiny)
    codes = torch.round((groups - low[..., None]) / s32[..., None]).clamp(0, 15).view_as(w).double()
    scale, offset = (q.scale_offset.double()[..., i].T.repeat_interleave(g, dim=1) for i in (0, 1))
    u = BF16 if q.scale_offset.dtype == torch.bfloat16 else EPS32
    bound = scale * (0.5 + 128 * EPS32) * (1 + 2 * u) + 2 * (8 * u * scale + u * offset.abs())
    return (codes - 8) * scale + offset, bound


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int4_weights_stay_within_half_a_step_at_a_real_layer_shape(dtype):
    d = SMALL.depth
    lin, x = real_layer(d.d_model, d.d_ff, dtype, seed=3)    # the depth feed-forward's first layer
    q = linears.Int4Linear(lin)
    ref, bound = int4_reference(lin, q)
    assert ((ref - lin.weight.double()).abs() <= bound).all()
    with torch.no_grad():
        got = q(x).double()
        want = x.double() @ ref.T + lin.bias.double()
    a = x.double().abs() @ ref.abs().T + lin.bias.double().abs()
    u = BF16 if dtype == torch.bfloat16 else EPS32
    # float32 accumulation, weights and output in the model's dtype (low_precision_bound's terms)
    assert ((got - want).abs() <= low_precision_bound(a, d.d_model, u)).all()
    full = x.double() @ lin.weight.double().T + lin.bias.double()
    assert (got - full).abs().max() > (got - want).abs().max()   # 4 bits did round something


@pytest.mark.parametrize("quant, kind", [("int8", linears.Int8Linear), ("int4", linears.Int4Linear)])
def test_quant_replaces_only_the_temporal_and_depth_linears(quant, kind):
    spec = TransformerSpec(2, 64, 128, 2, 32)        # int4 groups 32 inputs: widths in multiples of 32
    model = W.random_depthformer(replace(CFG, encoder_dim=64, temporal=spec, depth=spec), std=0.2)
    linears.prepare(model, batch=3, quant=quant, pack=False)
    kinds = {type(m) for m in model.temporal.modules()} | {type(m) for m in model.depth.modules()}
    assert kind in kinds and torch.nn.Linear not in kinds
    assert type(model.to_logits) is torch.nn.Linear and not hasattr(model, "level_heads")
    with pytest.raises(ValueError, match="quant must be one of off, int8, int4, got 'int2'"):
        linears.prepare(model, batch=3, quant="int2")


def test_a_model_is_prepared_once():
    model = W.random_depthformer(CFG, std=0.2)
    linears.prepare(model, batch=3, pack=False)
    with pytest.raises(ValueError, match="this model was prepared already; prepare a freshly loaded one"):
        linears.prepare(model, batch=3, pack=False)


def test_int4_says_it_needs_the_cpu():
    with torch.device("meta"):
        model = W.random_depthformer(CFG, std=0.2)
    with pytest.raises(ValueError, match="int4 runs on the CPU only"):
        linears.prepare(model, batch=3, quant="int4")
