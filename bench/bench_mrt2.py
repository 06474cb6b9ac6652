"""MRT2 cost per 40 ms frame: ms p50/p99/mean and real-time factor, random weights at the real
shapes (weights do not change the cost).

    python bench/bench_mrt2.py [--sizes small base] [--device cpu|cuda] [--dtype bf16]
                               [--frames 200] [--no-guidance] [--no-graph] [--compile] [--codec]

One JSON line per row:
- "mrt2_frame": the depthformer step, i.e. the temporal step plus 12 depth steps with sampling, for
  the three guidance branches in one batch (as the official runner);
- with --codec, "mrt2_codec_frame": the SpectroStream decoder alone (float32), and
  "mrt2_full_frame": model step + decoder, audio copied to the host, i.e. what MRT2Backend.generate
  does for each frame.
Each frame is timed until its output is ready (device synchronised). RTF = 40 ms / mean.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from scorewright.backends.mrt2.config import SIZES
from scorewright.backends.mrt2.sampler import Sampler, SamplingParams
from scorewright.backends.mrt2.spectrostream import SpectroStreamDecoder
from scorewright.backends.mrt2.weights import random_depthformer, randomise

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def timed(fn: Callable[[], object], frames: int, device: str, warmup: int = 5) -> dict:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync()
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    ms = np.array(times)
    return {"frames": frames, "warmup_s": round(warmup_s, 2),
            "ms_p50": round(float(np.percentile(ms, 50)), 3),
            "ms_p99": round(float(np.percentile(ms, 99)), 3),
            "ms_mean": round(float(ms.mean()), 3), "rtf": round(40.0 / float(ms.mean()), 2)}


def random_codec(device: str) -> SpectroStreamDecoder:
    with torch.device(device):
        return randomise(SpectroStreamDecoder(), std=0.02)


def run(a: argparse.Namespace, size: str, dtype: str) -> list[dict]:
    with torch.device(a.device):
        model = random_depthformer(SIZES[size]).to(DTYPES[dtype])
    sampler = Sampler(model, guidance=not a.no_guidance, cuda_graph=not a.no_graph, compile=a.compile)
    cond = torch.full((sampler.g, model.cfg.cond_width), 6, dtype=torch.long, device=a.device)
    params = SamplingParams()
    name = torch.cuda.get_device_name() if a.device == "cuda" else platform.processor() or "cpu"
    common = {"size": size, "device": a.device, "dtype": dtype, "guidance_branches": sampler.g,
              "cuda_graph": sampler._use_graph, "compiled": a.compile,
              "device_name": name,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    rows = [{"bench": "mrt2_frame", **common,
             "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
             **timed(lambda: sampler.step(cond, params).cpu(), a.frames, a.device)}]
    if a.codec:
        codec = random_codec(a.device)
        codes = torch.randint(0, 1024, (1, 1, 12), device=a.device)
        codec_only = timed(lambda: codec.decode(codes, cuda_graph=not a.no_graph).cpu(), a.frames, a.device)
        rows.append({"bench": "mrt2_codec_frame", "device": a.device, "dtype": "fp32",
                     "cuda_graph": a.device == "cuda" and not a.no_graph, "torch": torch.__version__,
                     **codec_only})

        def full_frame():
            codes = sampler.step(cond, params)
            return codec.decode(codes[:, None], cuda_graph=not a.no_graph).cpu()
        rows.append({"bench": "mrt2_full_frame", **common, **timed(full_frame, a.frames, a.device)})
    return rows


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
    ap.add_argument("--codec", action="store_true", help="also time the SpectroStream decoder, alone and "
                    "with the model step")
    a = ap.parse_args()
    dtype = a.dtype or ("bf16" if a.device == "cuda" else "fp32")
    for size in a.sizes:
        for row in run(a, size, dtype):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
