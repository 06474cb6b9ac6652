"""MRT2 depthformer cost per 40 ms frame: ms p50/p99/mean and real-time factor, random weights at
the real shapes (weights do not change the cost).

    python bench/bench_mrt2.py [--sizes small base] [--device cpu|cuda] [--dtype bf16]
                               [--frames 200] [--no-guidance] [--no-graph] [--compile]

One JSON line per (size, device, dtype, mode). A frame = the temporal step plus 12 depth steps with
sampling, for the three guidance branches in one batch (as the official runner); each frame is
timed to its tokens being ready (device synchronised). RTF = 40 ms / mean frame time.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from scorewright.backends.mrt2.config import SIZES
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams
from scorewright.backends.mrt2.weights import random_depthformer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def bench(size: str, device: str, dtype: str, frames: int, guidance: bool, graph: bool,
          compile: bool) -> dict:
    with torch.device(device):
        model = random_depthformer(SIZES[size]).to(DTYPES[dtype])
    sampler = Sampler(model, guidance=guidance, cuda_graph=graph, compile=compile)
    cond = torch.full((sampler.g, model.cfg.cond_width), 6, dtype=torch.long, device=device)
    params = SamplingParams()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(5):
        sampler.step(cond, params)
    sync()
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        sampler.step(cond, params).cpu()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    ms = np.array(times)
    return {
        "bench": "mrt2_frame", "size": size, "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "dtype": dtype, "guidance_branches": sampler.g, "cuda_graph": sampler._use_graph, "compiled": compile,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "frames": frames, "warmup_s": round(warmup_s, 2),
        "ms_p50": round(float(np.percentile(ms, 50)), 3), "ms_p99": round(float(np.percentile(ms, 99)), 3),
        "ms_mean": round(float(ms.mean()), 3), "rtf": round(40.0 / float(ms.mean()), 2),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["small", "base"], choices=sorted(SIZES))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, choices=sorted(DTYPES),
                    help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--no-guidance", action="store_true", help="full branch only")
    ap.add_argument("--no-graph", action="store_true", help="eager steps, no CUDA graph")
    ap.add_argument("--compile", action="store_true", help="torch.compile the step (fuses small kernels)")
    a = ap.parse_args()
    dtype = a.dtype or ("bf16" if a.device == "cuda" else "fp32")
    for size in a.sizes:
        row = bench(size, a.device, dtype, a.frames, not a.no_guidance, not a.no_graph, a.compile)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
