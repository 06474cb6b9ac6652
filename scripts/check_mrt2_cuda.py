"""GPU correctness checks for the MRT2 depthformer (run where CUDA is available; prints one JSON line).

    python scripts/check_mrt2_cuda.py

- CUDA fp32 teacher-forced logits == CPU fp32 (max abs difference);
- CUDA-graph replay samples the same tokens as eager steps for the same seed;
- bf16 logits stay close to fp32 (max abs difference, for information);
- the official-JAX parity fixture (tests/fixtures/mrt2_parity.safetensors) on CUDA: logits and
  decoded audio against the official outputs, fp32 and bf16.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from scorewright.backends.mrt2.config import tiny
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams
from scorewright.backends.mrt2.weights import load_depthformer, load_spectrostream, random_depthformer

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mrt2_parity.safetensors"


def parity_on_cuda() -> dict:
    from safetensors import safe_open
    with safe_open(str(FIXTURE), framework="pt") as f:
        ref = {k: f.get_tensor(k).cuda() for k in f.keys() if not k.startswith("params/")}
    out = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        m = load_depthformer(FIXTURE, dtype=dt, device="cuda")
        with torch.no_grad():
            lg = m(ref["in/cond"].long(), ref["in/codes"].long() + m.level_offsets)["logits"]
        out[f"parity_logits_{name}_max_abs"] = float((lg.float() - ref["out/logits"]).abs().max())
    dec = load_spectrostream(FIXTURE, device="cuda")
    codes = ref["in/ss_codes"].long()
    wave = torch.cat([dec.decode(codes[:, i: i + 1]) for i in range(codes.shape[1])], dim=1)
    spf = dec.cfg.samples_per_frame
    out["parity_audio_fp32_max_abs"] = float((wave[:, spf:] - ref["out/ss_waveform"]).abs().max())
    dec.reset()
    eager = torch.cat([dec.decode(codes[:, i: i + 1], cuda_graph=False) for i in range(codes.shape[1])], 1)
    dec.reset()
    graphed = torch.cat([dec.decode(codes[:, i: i + 1]) for i in range(codes.shape[1])], 1)
    out["codec_graph_vs_eager_max_abs"] = float((eager - graphed).abs().max())
    return out


def main() -> None:
    cfg = tiny()
    cpu = random_depthformer(cfg, std=0.2)
    gpu = random_depthformer(cfg, std=0.2).cuda()
    g = torch.Generator().manual_seed(1)
    cond = torch.randint(6, 11, (1, 12, cfg.cond_width), generator=g)
    codes = torch.randint(0, cfg.codebook, (1, 12, cfg.rvq_levels), generator=g)
    with torch.no_grad():
        a = cpu(cond, codes + cpu.level_offsets)["logits"]
        b = gpu(cond.cuda(), (codes + cpu.level_offsets).cuda())["logits"].cpu()
        half = random_depthformer(cfg, std=0.2).cuda().bfloat16()
        c = half(cond.cuda(), (codes + cpu.level_offsets).cuda())
    out = {"check": "mrt2_cuda", "device": torch.cuda.get_device_name(),
           "fp32_cuda_vs_cpu_max_abs": float((a - b).abs().max()),
           "bf16_vs_fp32_max_abs": float((c["logits"].float().cpu() - a).abs().max()),
           "logit_scale": float(a.abs().max())}
    runs = []
    for graph in (False, True):
        s = Sampler(gpu, guidance=True, seed=7, cuda_graph=graph)
        br = torch.full((3, cfg.cond_width), 6, dtype=torch.long, device="cuda")
        br[:, 12:140] = 7
        runs.append(torch.stack([s.step(br, SamplingParams()) for _ in range(30)]).cpu())
    out["graph_equals_eager"] = bool(torch.equal(runs[0], runs[1]))
    out.update(parity_on_cuda())
    out["distinct_tokens"] = int(runs[0].unique().numel())
    print(json.dumps(out))
    assert out["fp32_cuda_vs_cpu_max_abs"] < 1e-3 and out["graph_equals_eager"]
    assert out["parity_logits_fp32_max_abs"] < 1e-3 and out["parity_audio_fp32_max_abs"] < 1e-4
    assert out["codec_graph_vs_eager_max_abs"] < 1e-5


if __name__ == "__main__":
    main()
