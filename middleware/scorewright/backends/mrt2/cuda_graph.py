"""Capture a step function once as a CUDA graph (its inputs and state live in fixed tensors)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def capture(fn: Callable[[], object], warmup: int = 2) -> tuple[torch.cuda.CUDAGraph, object]:
    """Run `fn` `warmup` times on a side stream (lazy init, autotuning), then record one call.

    Returns the graph and what the recorded call returned (tensors the graph rewrites on replay).
    `fn` runs warmup + 1 times: callers save and restore any state it advances.
    """
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out
