"""The game's link to Scorewright: start or find a server, send game state, play the stream.

Audio comes from the shared-memory ring (or the ZMQ PUB socket with transport="zmq") and is
played through a pygame mixer channel with one block playing and at most one queued, so the
game itself adds at most two 40 ms frames of latency. A feeder thread tops the channel up every
5 ms, so a stutter in the game loop never starves the speakers.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import pygame

from scorewright.client import AudioSubscriber, Client, RingReader, wait_for_server
from scorewright.protocol import encode
from scorewright.transport import free_port

MAP = Path(__file__).with_name("music.yaml")
BLOCK = 1920
TARGET_FILL = 3 * BLOCK      # stream audio kept waiting in the ring (the server runs lookahead 4)
MAX_DRIFT = 0.1              # playback rate correction limit (+-10 %)


class MusicLink:
    def __init__(self, connect: str | None = None, transport: str = "ring",
                 record: str | None = None) -> None:
        self.server: subprocess.Popen | None = None
        if connect is None:
            connect = self._start_server()
        self.client = self._connect(connect)
        status = self.client.status
        self.transport = transport
        if transport == "ring" and status.get("ring"):
            self.ring: RingReader | None = RingReader(path=status["ring"], keep=BLOCK)
            self.sub: AudioSubscriber | None = None
        else:
            self.ring, self.sub = None, AudioSubscriber(status["audio"])
        self.channel = pygame.mixer.Channel(0)
        self.status: dict = dict(status)
        self.sent: dict[int, float] = {}
        self.latency_ms: float | None = None
        self.frames_played = 0
        self.gaps = 0
        self.max_gap_ms = 0.0
        self._starved_since: float | None = None
        self._primed = False
        self._fifo = np.zeros((0, 2), dtype=np.float32)
        self._last_arrival: float | None = None
        self._ring_seen = -1
        self.max_arrival_gap_ms = 0.0
        self.gap_log: list[tuple[float, float]] = []     # (seconds heard, gap in ms)
        self._last: dict[str, object] = {}
        self._notes_off_at: float | None = None
        self._status_due = 0.0
        self._wav = None
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="game-audio", daemon=True)
        if record:
            self._wav = wave.open(record, "wb")
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(48000)

    # -- server -------------------------------------------------------------------------
    def _start_server(self) -> str:
        control, audio = free_port(), free_port()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "scorewright.cli", "--log-level", "warning", "serve", str(MAP),
             "--control-port", str(control), "--audio-port", str(audio), "--tcp-port", "0",
             "--lookahead", "4",
             "--ring", f"game-{uuid.uuid4().hex[:8]}"], stdin=subprocess.DEVNULL)
        return f"tcp://127.0.0.1:{control}"

    def _connect(self, address: str) -> Client:
        """A server we started may still be loading; one given with --connect must answer now."""
        return wait_for_server(address, within=60.0 if self.server else 0.0, process=self.server,
                               name="sample-game")

    # -- game state out -----------------------------------------------------------------
    def _send(self, kind: str, key: str, current, **fields) -> None:
        """Send only changes."""
        if self._last.get(key) == current:
            return
        self._last[key] = current
        msg_id = self.client.send(kind, **fields)
        self.sent[msg_id] = time.time()

    def update_state(self, area: str, boss: bool, danger: float) -> None:
        self._send("state", "area", area, group="area", value=area)
        self._send("state", "boss", boss, group="boss", value="fighting" if boss else "absent")
        self._send("set", "danger", round(danger, 2), param="danger", value=round(danger, 2))

    def event(self, name: str) -> None:
        self.sent[self.client.send("event", name=name)] = time.time()

    def gem_motif(self) -> None:
        """A pickup plays a motif through `notes`."""
        self.client.send("notes", on=[76, 79, 84])
        self._notes_off_at = time.monotonic() + 0.3

    def pause(self, paused: bool) -> None:
        self.client.send("transport", cmd="pause" if paused else "play")

    def poll(self) -> None:
        """Replies (latency from `due`) and a status refresh 4 times a second; never blocks."""
        if self._notes_off_at and time.monotonic() > self._notes_off_at:
            self.client.send("notes", off=[76, 79, 84])
            self._notes_off_at = None
        for reply in self.client.poll_replies():
            if reply.get("type") == "status":
                self.status = reply
            elif reply.get("type") == "ok" and reply.get("id") in self.sent and "due" in reply:
                queued = 1 if self.channel.get_queue() is not None else 0
                self.latency_ms = (reply["due"] - self.sent.pop(reply["id"])) * 1000 + queued * 40
        if time.monotonic() > self._status_due:
            self._status_due = time.monotonic() + 0.25
            self.client._sock.send(encode({"type": "status", "id": "hud"}))

    # -- audio in -----------------------------------------------------------------------
    def _arrived(self) -> None:
        """New stream audio came in: track the longest wait between arrivals."""
        now = time.monotonic()
        if self._last_arrival is not None:
            self.max_arrival_gap_ms = max(self.max_arrival_gap_ms, (now - self._last_arrival) * 1000)
        self._last_arrival = now

    def _available(self) -> int:
        if self.ring is not None:
            if self.ring.heartbeat_age > 0.5:
                self.ring.reattach()
            if self.ring.write_pos != self._ring_seen:
                self._ring_seen = self.ring.write_pos
                self._arrived()
            return self.ring.available
        while (block := self.sub.recv(0.0)) is not None:      # PUB: collect into a small FIFO
            self._fifo = np.concatenate([self._fifo, block])[-8 * BLOCK:]
            self._arrived()
        return len(self._fifo)

    def _read(self, n: int) -> np.ndarray:
        if self.ring is not None:
            return self.ring.read(n)
        out, self._fifo = self._fifo[:n], self._fifo[n:]
        return out

    def _next_block(self) -> np.ndarray | None:
        """One 40 ms block for the speakers, drift-compensated.

        The sound card's clock never runs at exactly the server's rate (SDL's dummy driver is
        several % fast), so the block is resampled from slightly more or fewer stream samples
        to hold about TARGET_FILL samples in the ring: a real device drifts by ~0.01 %, which
        this corrects inaudibly; playback starts (and restarts) only at the target fill.
        """
        fill = self._available()
        if not self._primed:
            if fill < TARGET_FILL:
                return None
            self._primed = True
        ratio = min(max(1.0 + MAX_DRIFT * (fill - TARGET_FILL) / BLOCK, 1 - MAX_DRIFT), 1 + MAX_DRIFT)
        take = min(int(round(BLOCK * ratio)), fill)     # short of audio: stretch what there is
        if take < BLOCK * (1 - 2 * MAX_DRIFT):
            return None
        src = self._read(take)
        if take == BLOCK:
            return src
        pos = np.linspace(0, take - 1, BLOCK)
        return np.stack([np.interp(pos, np.arange(take), src[:, c]) for c in range(2)], axis=1)

    def pump(self) -> None:
        """Keep one block playing and one queued."""
        for _ in range(2):
            if self.channel.get_busy() and self.channel.get_queue() is not None:
                return
            block = self._next_block()
            if block is None:
                if not self.channel.get_busy() and self.frames_played and self._starved_since is None:
                    self._starved_since = time.monotonic()     # the speakers have nothing to play
                    self._primed = False
                return
            if self._starved_since is not None:
                gap_ms = (time.monotonic() - self._starved_since) * 1000
                self.gaps += 1
                self.max_gap_ms = max(self.max_gap_ms, gap_ms)
                self.gap_log.append((round(self.frames_played * 0.04, 2), round(gap_ms, 1)))
                self._starved_since = None
            pcm = np.round(np.clip(block, -1, 1) * 32767).astype("<i2")
            sound = pygame.mixer.Sound(buffer=pcm.tobytes())
            if self.channel.get_busy():
                self.channel.queue(sound)
            else:
                self.channel.play(sound)
            self.frames_played += 1
            if self._wav is not None:
                self._wav.writeframes(pcm.tobytes())

    def start_audio(self) -> None:
        sys.setswitchinterval(0.001)   # the feeder thread gets the GIL within 1 ms of asking
        self._feeder.start()

    def _feed(self) -> None:
        while not self._stop.wait(0.005):
            self.pump()

    def close(self) -> None:
        self._stop.set()
        if self._feeder.is_alive():
            self._feeder.join(2)
        if self._wav is not None:
            self._wav.close()
        for closer in (self.ring, self.sub, self.client):
            if closer is not None:
                closer.close()
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
