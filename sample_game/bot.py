"""Autopilot for --autoplay: gems in the meadow, dies once in the cave, clears it, beats the boss."""

from __future__ import annotations

import math

from .world import AREA_W, BOSS_ZONE_X, H, World


class Bot:
    def __init__(self) -> None:
        self.phase = "gems"
        self.skirmish_until: float | None = None

    def act(self, w: World) -> tuple[tuple[float, float], bool]:
        p = w.player
        if not p.alive or w.won:
            return (0.0, 0.0), False
        target, attack = (p.x, p.y), False
        if self.phase == "gems":
            left = [g for g in w.gems if not g.taken and g.x < AREA_W]
            if left:
                g = min(left, key=lambda g: math.hypot(g.x - p.x, g.y - p.y))
                target = (g.x, g.y)
            else:
                self.phase = "skirmish"
        if self.phase == "skirmish":              # dodge the cave's enemies for a while
            foes = [e for e in w.enemies if e.alive and e.x < AREA_W * 2]
            if foes and min(e.dist(p) for e in foes) < 300 and self.skirmish_until is None:
                self.skirmish_until = w.t + 4.0
            if self.skirmish_until is not None and w.t > self.skirmish_until:
                self.phase = "die"
            elif foes:
                move, _ = self._kite(w, min(foes, key=lambda e: e.dist(p)), keep=140)
                return move, False
        if self.phase == "die":                   # walk into the cave's enemies, unarmed
            foes = [e for e in w.enemies if e.alive and e.x < AREA_W * 2]
            if w.deaths:
                self.phase = "clear"
            elif foes:
                e = min(foes, key=lambda e: e.dist(p))
                target = (e.x, e.y)
            else:
                target = (AREA_W * 1.5, H / 2)
        if self.phase == "clear":
            foes = [e for e in w.enemies if e.alive]
            if foes:
                return self._kite(w, min(foes, key=lambda e: e.dist(p)), keep=58)
            self.phase = "boss"
        if self.phase == "boss":
            if p.x < BOSS_ZONE_X + 50:
                target = (BOSS_ZONE_X + 100, H / 2)
            else:
                return self._kite(w, w.boss, keep=88)
        dx, dy = target[0] - p.x, target[1] - p.y
        if math.hypot(dx, dy) < 4:
            return (0.0, 0.0), attack
        return (dx, dy), attack

    @staticmethod
    def _kite(w: World, foe, keep: float) -> tuple[tuple[float, float], bool]:
        """Stay about `keep` away from a foe (out of its reach, inside ours) and strike."""
        p = w.player
        dx, dy, d = foe.x - p.x, foe.y - p.y, foe.dist(p) or 1.0
        if d < keep - 8:
            move = (-dx, -dy) if 40 < p.y < H - 40 else (-dx, H / 2 - p.y)
        elif d > keep + 8:
            move = (dx, dy)
        else:
            move = (0.0, 0.0)
        return move, d < 70 + foe.r
