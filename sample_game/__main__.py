"""python -m sample_game [--autoplay SECONDS] [--connect ADDR] [--transport ring|zmq] [--record WAV]
[--stats FILE] [--lookahead N] [--cushion FRAMES]"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import numpy as np
import pygame

from .bot import Bot
from .music import CUSHION, LOOKAHEAD, MusicLink
from .speaker import audio_driver
from .view import WINDOW_W, View
from .world import H, World

FPS = 60


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scorewright-sample-game", description="Scorewright's sample game.")
    ap.add_argument("--autoplay", type=float, metavar="SECONDS", help="let a bot play, then quit")
    ap.add_argument("--connect", metavar="ADDR", help="use a running server (default: start one)")
    ap.add_argument("--transport", choices=["ring", "zmq"], default="ring")
    ap.add_argument("--record", metavar="WAV", help="save what the player heard")
    ap.add_argument("--screenshots", metavar="DIR", help="save title.png and hud_combat.png here")
    ap.add_argument("--stats", metavar="FILE", help="write frame-rate and audio figures (JSON) on exit")
    ap.add_argument("--lookahead", type=int, default=LOOKAHEAD,
                    help="frames the server the game starts generates ahead (default %(default)s)")
    ap.add_argument("--cushion", type=float, default=CUSHION,
                    help="stream audio held before playing, in 40 ms frames (default %(default)s)")
    return ap.parse_args(argv)


def latency_stats(latencies_ms) -> dict:
    """Message -> first affected sample heard, measured on the sound card's clock (meaningful
    with a real-time driver: SDL's dummy and disk drivers do not keep time)."""
    if not latencies_ms:
        return {"latency_count": 0}
    p50, p95 = np.percentile(np.asarray(latencies_ms), [50, 95])
    return {"latency_count": len(latencies_ms), "latency_ms_p50": round(float(p50), 1),
            "latency_ms_p95": round(float(p95), 1), "latency_ms_max": round(max(latencies_ms), 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    pygame.display.init()      # not pygame.init(): the mixer would take the audio device the
    pygame.font.init()         # music plays through (see speaker.py)
    pygame.display.set_caption("Scorewright sample game")
    screen = pygame.display.set_mode((WINDOW_W, H))
    view, clock = View(screen), pygame.time.Clock()
    view.title()
    pygame.display.flip()
    link = MusicLink(args.connect, args.transport, args.record, args.lookahead, args.cushion)
    gc.freeze()          # start-up objects leave the collector's view: no long GC pauses later
    link.start_audio()
    world, bot = World(), Bot() if args.autoplay else None
    scene, hud, paused = "title", bool(args.autoplay), False
    started = time.monotonic()
    frame_times: list[float] = []
    shots = {"title": False, "combat": False}
    marks: dict[str, float] = {}          # seconds into what the player heard (for --record checks)
    running = True
    try:
        while running:
            dt = clock.tick(FPS) / 1000
            now = time.monotonic() - started
            if scene == "play":
                frame_times.append(dt)
            for e in pygame.event.get():
                if e.type == pygame.QUIT:
                    running = False
                elif e.type == pygame.KEYDOWN:
                    if e.key == pygame.K_RETURN and scene == "title":
                        scene = "play"
                    elif e.key == pygame.K_F1:
                        hud = not hud
                    elif e.key == pygame.K_ESCAPE and scene == "play":
                        paused = not paused
                        link.pause(paused)
                    elif e.key == pygame.K_q and (paused or scene == "title"):
                        running = False
            if bot is not None:
                if scene == "title" and now > 1.0:
                    scene = "play"
                if now > args.autoplay:
                    running = False
            if scene == "title":
                view.title()
                if args.screenshots and not shots["title"]:
                    pygame.image.save(screen, os.path.join(args.screenshots, "title.png"))
                    shots["title"] = True
            else:
                if not paused:
                    if bot is not None:
                        move, attack = bot.act(world)
                    else:
                        keys = pygame.key.get_pressed()
                        move = (float(keys[pygame.K_RIGHT] or keys[pygame.K_d]) -
                                float(keys[pygame.K_LEFT] or keys[pygame.K_a]),
                                float(keys[pygame.K_DOWN] or keys[pygame.K_s]) -
                                float(keys[pygame.K_UP] or keys[pygame.K_w]))
                        attack = bool(keys[pygame.K_SPACE])
                    ev = world.update(min(dt, 0.05), move, attack)
                    heard = link.frames_played * 0.04
                    if world.area == "cave":
                        marks.setdefault("cave", heard)
                    if world.danger() > 0.35:          # music.yaml's combat rule engages
                        marks.setdefault("combat", heard)
                    if ev.died:
                        marks.setdefault("died", heard)
                    if ev.won:
                        marks.setdefault("won", heard)
                    if ev.gems:
                        link.gem_motif()
                    if ev.died:
                        link.event("player_died")
                    if ev.won:
                        link.event("victory")
                    link.update_state(world.area, world.boss_fight, world.danger())
                view.world(world)
                if paused:
                    view.paused()
                if hud:
                    view.hud(link.status, link, clock.get_fps())
                else:
                    view.hint()
                if args.screenshots and hud and not shots["combat"] and "combat" in link.status.get(
                        "weights", {}) and link.status["weights"]["combat"] > 0.5:
                    pygame.image.save(screen, os.path.join(args.screenshots, "hud_combat.png"))
                    shots["combat"] = True
            link.poll()
            pygame.display.flip()
    except KeyboardInterrupt:
        pass
    finally:
        stats = {"frames": len(frame_times), "fps_avg": len(frame_times) / max(sum(frame_times), 1e-9),
                 "fps_p5": 1 / sorted(frame_times)[int(len(frame_times) * 0.95)] if frame_times else 0,
                 "deaths": world.deaths, "won": world.won, "gaps": link.speaker.gaps,
                 "max_gap_ms": round(link.speaker.max_gap_ms, 1), "frames_played": link.frames_played,
                 "max_arrival_gap_ms": round(link.stream.arrivals.max_gap_ms, 1),
                 "gap_log": link.speaker.gap_log[:50],
                 "max_callback_gap_ms": round(link.speaker.max_callback_gap_ms, 1),
                 "stream_lost": link.stream.sub.lost if link.transport == "zmq" else 0,
                 "underruns": link.status.get("underruns"),
                 "server_cost_ms_max": link.status.get("cost_ms_max"),
                 "server_lookahead_low": link.status.get("lookahead_low"),
                 "bot_phase": bot.phase if bot else None,
                 "marks": marks, "ring": link.status.get("ring"), "transport": link.transport,
                 "started_server": link.server is not None, "audio_driver": audio_driver(),
                 **latency_stats(link.latencies_ms)}
        link.close()
        stats["samples_played"] = link.speaker.samples_played      # final: the device is closed
        pygame.quit()
        if args.stats:
            import json
            with open(args.stats, "w") as f:
                json.dump(stats, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
