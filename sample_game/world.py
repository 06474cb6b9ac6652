"""The game world: areas, player, enemies, boss, gems. Pure logic, no drawing or audio."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

AREA_W, H = 960, 600
AREAS = ("meadow", "cave", "castle")
WORLD_W = AREA_W * len(AREAS)
BOSS_ZONE_X = AREA_W * 2 + 480


@dataclass
class Actor:
    x: float
    y: float
    r: float
    hp: int
    speed: float
    hurt_timer: float = 0.0

    def dist(self, other: Actor) -> float:
        return math.hypot(self.x - other.x, self.y - other.y)

    @property
    def alive(self) -> bool:
        return self.hp > 0


@dataclass
class Gem:
    x: float
    y: float
    taken: bool = False


@dataclass
class Events:
    """What happened this tick (the music link turns these into messages)."""

    gems: int = 0
    died: bool = False
    won: bool = False
    hits: int = 0


@dataclass
class World:
    seed: int = 1
    player: Actor = field(default_factory=lambda: Actor(120, H / 2, 16, 5, 240))
    enemies: list[Actor] = field(default_factory=list)
    boss: Actor = field(default_factory=lambda: Actor(AREA_W * 3 - 200, H / 2, 42, 12, 95))
    gems: list[Gem] = field(default_factory=list)
    attack_cooldown: float = 0.0
    attack_flash: float = 0.0
    respawn_timer: float = 0.0
    won: bool = False
    deaths: int = 0
    t: float = 0.0

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.gems = [Gem(rng.uniform(250, AREA_W - 100), rng.uniform(100, H - 100)) for _ in range(3)]
        self.gems += [Gem(AREA_W + rng.uniform(100, AREA_W - 100), rng.uniform(100, H - 100))
                      for _ in range(2)]
        self.enemies = [Actor(AREA_W * a + rng.uniform(300, AREA_W - 80), rng.uniform(80, H - 80), 14, 2, 120)
                        for a in (1, 1, 1, 2, 2)]

    @property
    def area(self) -> str:
        return AREAS[min(int(self.player.x // AREA_W), len(AREAS) - 1)]

    @property
    def boss_fight(self) -> bool:
        return self.boss.alive and self.player.alive and self.player.x > BOSS_ZONE_X

    def danger(self) -> float:
        """0..1 from how many enemies are how close (the boss counts triple)."""
        if not self.player.alive:
            return 0.0
        d = sum(max(0.0, 1 - e.dist(self.player) / 420) for e in self.enemies if e.alive)
        if self.boss_fight:
            d += 3 * max(0.0, 1 - self.boss.dist(self.player) / 600)
        return min(1.0, d / 1.5)

    def update(self, dt: float, move: tuple[float, float], attack: bool) -> Events:
        ev = Events()
        self.t += dt
        p = self.player
        if self.won:
            return ev
        if not p.alive:
            self.respawn_timer -= dt
            if self.respawn_timer <= 0:
                p.hp, p.x, p.y = 5, AREA_W * AREAS.index(self.area) + 60, H / 2
            return ev
        mx, my = move
        norm = math.hypot(mx, my) or 1.0
        p.x = min(max(p.x + p.speed * dt * mx / norm, p.r), WORLD_W - p.r)
        p.y = min(max(p.y + p.speed * dt * my / norm, p.r), H - p.r)
        self.attack_cooldown = max(0.0, self.attack_cooldown - dt)
        self.attack_flash = max(0.0, self.attack_flash - dt)
        if attack and self.attack_cooldown == 0:
            self.attack_cooldown, self.attack_flash = 0.35, 0.12
            for foe in [*self.enemies, self.boss]:
                if foe.alive and foe.dist(p) < 70 + foe.r:
                    foe.hp -= 1
                    ev.hits += 1
            if not self.boss.alive:
                self.won = ev.won = True
        for g in self.gems:
            if not g.taken and math.hypot(g.x - p.x, g.y - p.y) < 28:
                g.taken = True
                ev.gems += 1
        foes = [e for e in self.enemies if e.alive] + ([self.boss] if self.boss_fight else [])
        for foe in foes:
            if foe.dist(p) < 380:
                d = foe.dist(p) or 1.0
                foe.x += (p.x - foe.x) / d * foe.speed * dt
                foe.y += (p.y - foe.y) / d * foe.speed * dt
            if foe.dist(p) < foe.r + p.r + 4:
                p.hurt_timer -= dt
                if p.hurt_timer <= 0:
                    p.hp -= 1
                    p.hurt_timer = 0.5
        if not p.alive:
            ev.died = True
            self.deaths += 1
            self.respawn_timer = 2.0
            for foe in foes:                       # foes back off so the respawn is fair
                foe.x += 150 if foe.x > p.x else -150
        return ev
