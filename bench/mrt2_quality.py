"""Quality proxies of MRT2's reduced-precision CPU paths against float32, random weights at the real
shapes (no audio judged: with real weights, audio quality stays unverified).

    python bench/mrt2_quality.py [--size small] [--frames 40] [--seed 0]

A float32 model (plain nn.Linear) streams `frames` frames under one conditioning with guidance (the
engine's sampling settings), drawing its own Gumbel noise. Each variant (bf16 + prepacked linears,
as the backend runs on CPUs with native bf16; bf16 + int8 or int4 temporal/depth linears, the
opt-ins) is
then teacher-forced on the same history and given the same noise, and per frame and RVQ level:

- logit error: |variant - fp32| over the guided logits (max, and mean), also relative to max |logit|;
- top-1 agreement: the guided argmax is the same code;
- token agreement: the token sampled (top-k, then argmax of logits + noise) is the same code.

One JSON line per variant ("mrt2_quality").
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch

from scorewright.backends.mrt2 import linears, tokens
from scorewright.backends.mrt2.config import SIZES
from scorewright.backends.mrt2.profiles import ENGINE
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams
from scorewright.backends.mrt2.weights import random_depthformer
from scorewright.conditioning import NOTE_OFF, NOTE_ON, Conditioning


def conditioning(seed: int) -> torch.Tensor:
    """[3, 144] ids: random style tokens, a C major chord held, drums free, engine settings."""
    rng = np.random.default_rng(seed)
    notes = np.full(128, NOTE_OFF, np.int8)
    notes[[60, 64, 67]] = NOTE_ON
    cond = Conditioning(style=np.zeros(0), notes=notes, style_tokens=rng.integers(0, 1024, 12), **ENGINE)
    return torch.from_numpy(tokens.branches(tokens.encode(cond), guidance=True))


def guided_levels(s: Sampler, ids: torch.Tensor, codes: torch.Tensor, noise: torch.Tensor,
                  params: SamplingParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced on `codes` [1, 12]: the guided logits [12, 1024] and the token each level
    would sample with `noise` [1, 12, 1024]."""
    s._load_inputs(ids, params)
    s.noise.copy_(noise)
    logits = s.teacher_forced_logits(ids, codes)                 # [3, 12, 1024]
    guided = torch.stack([s._guide(logits[:, lv]) for lv in range(logits.shape[1])], dim=1)  # [1, 12, C]
    sampled = torch.stack([s._sample(guided[:, lv], lv) for lv in range(guided.shape[1])], dim=1)
    return guided[0], sampled[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=sorted(SIZES))
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    params = SamplingParams(temperature=ENGINE["temperature"], top_k=int(ENGINE["top_k"]),
                            cfg_style=ENGINE["cfg_style"], cfg_notes=ENGINE["cfg_notes"])
    ref = random_depthformer(SIZES[a.size], seed=a.seed)
    ids = conditioning(a.seed)
    free = Sampler(ref, seed=a.seed)
    history, noises = [], []
    for _ in range(a.frames):                                    # the float32 stream, its own noise
        history.append(free.step(ids, params))
        noises.append(free.noise.clone())
    variants = {"fp32 (reference, replayed)": lambda m: m}
    for name, quant in (("bf16 + prepacked", "off"), ("bf16 + int8 temporal/depth + prepacked", "int8"),
                        (f"bf16 + int4 (groups of {linears.INT4_GROUP}) temporal/depth + prepacked", "int4")):
        def make(m, quant=quant):
            m = copy.deepcopy(m).to(torch.bfloat16)
            linears.prepare(m, batch=3, quant=quant)
            return m
        variants[name] = make
    want = None
    for name, make in variants.items():
        t0 = time.perf_counter()
        s = Sampler(make(ref), seed=a.seed)
        got = [guided_levels(s, ids, c, n, params) for c, n in zip(history, noises, strict=True)]
        logits, toks = torch.stack([g[0] for g in got]), torch.stack([g[1] for g in got])
        if want is None:
            want = (logits, toks)
            assert torch.equal(toks, torch.cat(history)), "replaying the float32 stream changed its tokens"
        err = (logits - want[0]).abs()
        scale = float(want[0].abs().max())
        print(json.dumps({
            "bench": "mrt2_quality", "variant": name, "size": a.size, "frames": a.frames,
            "levels": logits.shape[1], "seed": a.seed, "torch": torch.__version__,
            "logit_scale": round(scale, 3), "logit_err_max": float(f"{float(err.max()):.3g}"),
            "logit_err_mean": float(f"{float(err.mean()):.3g}"),
            "logit_err_max_rel": float(f"{float(err.max()) / scale:.3g}"),
            "top1_agreement": round(float((logits.argmax(-1) == want[0].argmax(-1)).float().mean()), 4),
            "token_agreement": round(float((toks == want[1]).float().mean()), 4),
            "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
