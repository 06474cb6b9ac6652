"""GPU correctness checks for the MRT2 depthformer (run where CUDA is available; prints one JSON line).

    python scripts/check_mrt2_cuda.py

- CUDA fp32 teacher-forced logits == CPU fp32 (max abs difference);
- CUDA-graph replay samples the same tokens as eager steps for the same seed;
- bf16 logits stay close to fp32 (max abs difference, for information).
"""

from __future__ import annotations

import json

import torch

from scorewright.backends.mrt2.config import tiny
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams
from scorewright.backends.mrt2.weights import random_depthformer


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
    out["distinct_tokens"] = int(runs[0].unique().numel())
    print(json.dumps(out))
    assert out["fp32_cuda_vs_cpu_max_abs"] < 1e-3 and out["graph_equals_eager"]


if __name__ == "__main__":
    main()
