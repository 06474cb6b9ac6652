"""MRT2 cost per 40 ms frame: ms p50/p99/mean and real-time factor, random weights at the real
shapes (weights do not change the cost).

    python bench/bench_mrt2.py [--sizes small base] [--device cpu|cuda] [--dtype bf16]
                               [--frames 200] [--no-guidance] [--no-graph] [--compile] [--codec]
    python bench/bench_mrt2.py --models DIR [--threads 1 2] [--frames 200] [--label STEP]

With --models (a folder from scripts/make_random_mrt2_models.py, or the real one): the real path,
"mrt2_backend_frame", one row per thread count. The backend is built by the registry exactly as
`render`/`serve` build it (so the SCOREWRIGHT_MRT2_* variables apply, and are recorded), and each
frame is `backend.generate(cond)`: model step for the three guidance branches, codec, audio on the
host. The row has the start-up time (building the backend), p50/p99, the model step and the codec
timed alone, the step's linear layers timed alone (replayed back to back with the inputs one step
gave them: the weight-reading part of the step), and the floors measured in the same run
(bench/mrt2_floor.py).

Otherwise, one JSON line per row:
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
import os
import platform
import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from mrt2_floor import frame_bytes, frame_flops, peak_gflops, read_bandwidth_gbs, step_linears

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


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def backend_row(a: argparse.Namespace, threads: int) -> dict:
    """The real path at `threads` intra-op threads (see the module docstring)."""
    from scorewright.backends.base import create_backend
    from scorewright.backends.mrt2 import tokens
    from scorewright.backends.mrt2.profiles import ENGINE
    from scorewright.conditioning import Conditioning

    torch.set_num_threads(threads)
    os.environ["SCOREWRIGHT_MODELS"] = str(a.models)
    t0 = time.perf_counter()
    backend = create_backend("mrt2", seed=0)
    startup_s = time.perf_counter() - t0
    cond = Conditioning(style=backend.embed_text("dark ambient drones"), **ENGINE)
    dev = backend.device.type
    load0, cpu0, wall0 = os.getloadavg()[0], _cpu_s(), time.perf_counter()
    frame = timed(lambda: backend.generate(cond), a.frames, dev)
    cpu_share = (_cpu_s() - cpu0) / (time.perf_counter() - wall0) / threads
    ids = torch.from_numpy(tokens.branches(tokens.encode(cond), backend.guidance)).to(backend.device)
    params = SamplingParams()                     # the engine's settings, as `cond` carries them
    n = max(a.frames // 4, 10)
    step = timed(lambda: backend.sampler.step(ids, params).cpu(), n, dev)
    calls = step_linears(backend.model, lambda: backend.sampler.step(ids, params))
    linears = timed(lambda: [layer(x) for layer, x in calls], n, dev) if calls else None
    codes = torch.randint(0, 1024, (1, 1, 12), device=backend.device)
    codec = timed(lambda: backend.decoder.decode(codes).float().cpu(), n, dev)
    flops = frame_flops(lambda: backend.generate(cond))
    nbytes = frame_bytes(backend)
    bw = read_bandwidth_gbs()
    dtypes = {"model": str(next(backend.model.parameters()).dtype).removeprefix("torch."),
              "codec": str(backend.decoder.compute_dtype).removeprefix("torch.")}
    peak = peak_gflops(torch.bfloat16 if "bfloat16" in dtypes["model"] else torch.float32)
    read = nbytes["model_weights_read"] + nbytes["codec_weights"] + nbytes["kv_cache"]
    unique = nbytes["model_weights_unique"] + nbytes["codec_weights"] + nbytes["kv_cache"]
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("SCOREWRIGHT_MRT2_")}
    size = os.environ.get("SCOREWRIGHT_MRT2_SIZE", "small")
    return {"bench": "mrt2_backend_frame", "label": a.label, "size": size,
            "device": dev, "device_name": platform.processor() or platform.machine(), "threads": threads,
            "dtypes": dtypes, "env": env, "torch": torch.__version__, "startup_s": round(startup_s, 2),
            **frame, "rtf": round(40.0 / frame["ms_mean"], 3),
            "model_step": {**{k: step[k] for k in ("ms_p50", "ms_p99")}, "linear_calls": len(calls),
                           "linears_alone_ms_p50": linears and linears["ms_p50"]},
            "codec": {k: codec[k] for k in ("ms_p50", "ms_p99")},
            "floor": {"read_gbs": round(bw, 1), "peak_gflops": round(peak, 1),
                      "gflop_per_frame": round(flops / 1e9, 3), "mb_read_per_frame": round(read / 1e6, 1),
                      "mb_unique_per_frame": round(unique / 1e6, 1), **{f"mb_{k}": round(v / 1e6, 1)
                                                                      for k, v in nbytes.items()},
                      "memory_ms": round(read / bw / 1e6, 1), "memory_ms_unique": round(unique / bw / 1e6, 1),
                      "compute_ms": round(flops / peak / 1e6, 1)},
            "loadavg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "cpu_share": round(cpu_share, 2)}


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
    ap.add_argument("--models", type=str, default=None, help="the real path: a models folder")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="with --models")
    ap.add_argument("--label", default="", help="with --models: the step measured")
    a = ap.parse_args()
    if a.models:
        for threads in a.threads:
            print(json.dumps(backend_row(a, threads)), flush=True)
        return
    dtype = a.dtype or ("bf16" if a.device == "cuda" else "fp32")
    for size in a.sizes:
        for row in run(a, size, dtype):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
