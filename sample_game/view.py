"""Drawing: the world, the title and pause screens, and the HUD (F1)."""

from __future__ import annotations

import pygame

from scorewright.trace import note_name

from .world import AREA_W, AREAS, H, World

BG = {"meadow": (46, 94, 62), "cave": (34, 32, 48), "castle": (70, 62, 74)}
INK, DIM, ACCENT, DANGER = (236, 232, 220), (150, 146, 140), (242, 190, 70), (226, 84, 72)
STYLE_COLOURS = [(111, 176, 214), (242, 190, 70), (226, 84, 72), (160, 120, 220), (120, 200, 140),
                 (230, 140, 190)]
PLAY_W = 960                  # the play area, left
PANEL_W = 300                 # the music panel beside it (never over the play area)
WINDOW_W = PLAY_W + PANEL_W
PANEL_BG = (16, 17, 26)


class View:
    def __init__(self, screen: pygame.Surface) -> None:
        self.screen = screen
        self.font = pygame.font.Font(None, 24)
        self.big = pygame.font.Font(None, 64)
        self.small = pygame.font.Font(None, 20)

    def text(self, s: str, pos, font=None, colour=INK, centre=False) -> None:
        surf = (font or self.font).render(s, True, colour)
        rect = surf.get_rect(center=pos) if centre else surf.get_rect(topleft=pos)
        self.screen.blit(surf, rect)

    def world(self, w: World) -> None:
        cam = min(max(w.player.x - PLAY_W / 2, 0), AREA_W * len(AREAS) - PLAY_W)
        for i, name in enumerate(AREAS):
            pygame.draw.rect(self.screen, BG[name], (i * AREA_W - cam, 0, AREA_W, H))
            self.text(name.upper(), (i * AREA_W - cam + 20, H - 34), self.small, DIM)
        for g in w.gems:
            if not g.taken:
                pygame.draw.polygon(self.screen, ACCENT, [(g.x - cam, g.y - 10), (g.x - cam + 8, g.y),
                                                          (g.x - cam, g.y + 10), (g.x - cam - 8, g.y)])
        for e in w.enemies:
            if e.alive:
                pygame.draw.circle(self.screen, DANGER, (e.x - cam, e.y), e.r)
        if w.boss.alive:
            b = w.boss
            pygame.draw.circle(self.screen, (150, 40, 60), (b.x - cam, b.y), b.r)
            pygame.draw.rect(self.screen, DANGER, (b.x - cam - 40, b.y - b.r - 14, 80 * b.hp / 12, 6))
        p = w.player
        if p.alive:
            if w.attack_flash:
                pygame.draw.circle(self.screen, INK, (p.x - cam, p.y), 70, 2)
            pygame.draw.circle(self.screen, (111, 176, 214), (p.x - cam, p.y), p.r)
        for i in range(5):
            colour = DANGER if i < p.hp else (80, 70, 70)
            pygame.draw.rect(self.screen, colour, (20 + i * 22, 18, 16, 16))
        if not p.alive:
            self.text("you died", (PLAY_W / 2, H / 2), self.big, DANGER, centre=True)
        if w.won:
            self.text("victory!", (PLAY_W / 2, H / 2), self.big, ACCENT, centre=True)

    def title(self) -> None:
        self.screen.fill((24, 26, 38))
        self.text("SCOREWRIGHT", (WINDOW_W / 2, 170), self.big, ACCENT, centre=True)
        self.text("the sample game: the music follows you", (WINDOW_W / 2, 220), self.font, INK, centre=True)
        for i, line in enumerate(["move: WASD / arrows", "attack: space", "music HUD: F1",
                                  "pause: Esc", "press Enter to start"]):
            self.text(line, (WINDOW_W / 2, 300 + 30 * i), self.font, DIM if i < 4 else INK, centre=True)

    def paused(self) -> None:
        shade = pygame.Surface((PLAY_W, H), pygame.SRCALPHA)
        shade.fill((0, 0, 0, 150))
        self.screen.blit(shade, (0, 0))
        self.text("paused: Esc to resume, Q to quit", (PLAY_W / 2, H / 2), self.font, INK, centre=True)

    def _panel(self) -> tuple[int, int]:
        """The panel beside the play area, cleared; returns where its text starts."""
        pygame.draw.rect(self.screen, PANEL_BG, (PLAY_W, 0, PANEL_W, H))
        pygame.draw.line(self.screen, (60, 60, 76), (PLAY_W, 0), (PLAY_W, H))
        return PLAY_W + 16, 18

    def hint(self) -> None:
        """The panel with the HUD off: the controls."""
        x, y = self._panel()
        self.text("music HUD: F1", (x, y), self.font, ACCENT)
        for i, line in enumerate(["move: WASD / arrows", "attack: space", "pause: Esc"]):
            self.text(line, (x, y + 30 + 20 * i), self.small, DIM)

    def hud(self, status: dict, link, fps: float) -> None:
        x, y = self._panel()
        self.text("music", (x, y), self.font, ACCENT)
        y += 26
        weights = sorted(status.get("weights", {}).items(), key=lambda kv: -kv[1])[:5]
        for i, (name, wgt) in enumerate(weights):
            pygame.draw.rect(self.screen, STYLE_COLOURS[i % 6], (x + 100, y + 3, 170 * wgt, 12))
            self.text(f"{name[:14]}", (x, y), self.small)
            y += 18
        y += 6
        params = " ".join(f"{k} {v:.2f}" for k, v in status.get("params", {}).items())
        states = " ".join(f"{k}={v}" for k, v in status.get("states", {}).items())
        latency = f"{link.latency_ms:.0f} ms" if link.latency_ms is not None else "-"
        notes = ",".join(note_name(n) for n in status.get("notes", [])[:6]) or "-"
        lines = [params, states, f"notes {notes}", f"tempo {status.get('tempo') or 0:.0f} bpm   drums "
                 f"{ {1: 'on', 0: 'off'}.get(status.get('drums'), 'free') }",
                 f"rules: {', '.join(status.get('rules', [])) or '-'}",
                 f"frame cost p50 {status.get('cost_ms_p50', 0):.1f} / "
                 f"p99 {status.get('cost_ms_p99', 0):.1f} ms",
                 f"underruns {status.get('underruns', 0)}   gaps here {link.speaker.gaps}",
                 f"event -> audio {latency}", f"fps {fps:.0f}   transport {link.transport}"]
        for line in lines:
            self.text(line, (x, y), self.small, INK)
            y += 20
