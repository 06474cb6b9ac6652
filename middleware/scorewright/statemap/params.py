"""Continuous game parameters (RTPCs): clamped targets, one-pole smoothing, slew, curves."""

from __future__ import annotations

import math

import numpy as np

from ..audio import FRAME_SECONDS
from .errors import InputError
from .model import Param


def apply_curve(p: Param, value: float) -> float:
    """Response curve of a param: maps its range onto itself."""
    if p.curve == "linear":
        return value
    if p.curve == "points":
        xs, ys = zip(*p.points, strict=True)
        return float(np.interp(value, xs, ys))
    x = (value - p.min) / (p.max - p.min)
    y = (math.expm1(3 * x) / math.expm1(3)) if p.curve == "exp" else x * x * (3 - 2 * x)
    return p.min + y * (p.max - p.min)


class Params:
    """The map's params: `targets` as the game set them, `raw` smoothed toward them frame by
    frame, `values` after each param's curve (what expressions see)."""

    def __init__(self, specs: dict[str, Param]) -> None:
        self.specs = specs
        self.reset()

    def reset(self) -> None:
        self.raw = {n: p.default for n, p in self.specs.items()}
        self.values = {n: apply_curve(self.specs[n], v) for n, v in self.raw.items()}
        self.targets = dict(self.raw)

    def check(self, name: str, value: float) -> float:
        """The value a param would take (clamped to its range); raises InputError."""
        p = self.specs.get(name)
        if p is None:
            raise InputError("unknown_param", f"unknown param '{name}'; this map has: "
                             f"{', '.join(self.specs) or 'no params'}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError("bad_value", f"param '{name}' needs a finite number, got {value!r}")
        return min(max(float(value), p.min), p.max)

    def set(self, name: str, value: float) -> None:
        self.targets[name] = self.check(name, value)

    def smooth(self) -> None:
        """One frame of smoothing (attack/release time constants, then the slew limit)."""
        for name, p in self.specs.items():
            v, target = self.raw[name], self.targets[name]
            if v == target:
                continue
            tau = p.attack_ms if target > v else p.release_ms
            new = target if tau <= 0 else v + (1.0 - math.exp(-FRAME_SECONDS * 1000 / tau)) * (target - v)
            if p.slew is not None:
                limit = p.slew * FRAME_SECONDS
                new = v + min(max(new - v, -limit), limit)
            if abs(new - target) < 1e-6 * (p.max - p.min):
                new = target
            self.raw[name] = new
            self.values[name] = apply_curve(p, new)

    def adopt(self, old: Params) -> None:
        """Keep the values of params both maps have (clamped to the new ranges)."""
        for name, p in self.specs.items():
            if name in old.raw:
                v = min(max(old.raw[name], p.min), p.max)
                self.raw[name], self.targets[name] = v, min(max(old.targets[name], p.min), p.max)
                self.values[name] = apply_curve(p, v)
