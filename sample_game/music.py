"""The game's link to Scorewright: start or find a server, send game state, play the stream.

Audio comes from the shared-memory ring (or the ZMQ PUB socket with transport="zmq") and is
played by a callback-driven SDL device (`speaker.Speaker`): the game adds one 10 ms device
buffer of latency, and a stutter in the game loop never starves the speakers.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path

import numpy as np

from scorewright.audio import FRAME_SAMPLES
from scorewright.client import AudioSubscriber, Client, RingReader, wait_for_server
from scorewright.transport import free_ports

from .speaker import Speaker

MAP = Path(__file__).with_name("music.yaml")
BLOCK = FRAME_SAMPLES
# The server we start keeps its default lookahead: what the player hears depends on the audio
# the game holds (the cushion), not on how early the server publishes, so lookahead 3 costs no
# latency and gives generation 40 ms more slack than 2 (bench/bench_game_latency.py: the same
# p50/p95; lookahead 2 had an underrun on a loaded machine).
LOOKAHEAD = 3
# Stream audio kept waiting, in frames: it rises by a frame at each publish and falls between,
# so the mean fill must cover half a frame, the device's chunk and the publishing jitter of a
# busy machine (the bench measures the trade: latency against gaps).
CUSHION = 1.5


class ArrivalClock:
    """The longest wait between two arrivals of stream audio once playback has started (a
    server-side figure: the stream's lookahead must cover it)."""

    def __init__(self) -> None:
        self.max_gap_ms = 0.0
        self.playing = False
        self._last: float | None = None

    def tick(self) -> None:
        now = time.monotonic()
        if self._last is not None and self.playing:
            self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000)
        self._last = now


class RingStream:
    """The shared-memory ring as the speaker's source; reattaches to a restarted server."""

    def __init__(self, path: str) -> None:
        self.reader = RingReader(path=path, keep=BLOCK)
        self.arrivals = ArrivalClock()
        self._seen = -1

    def available(self) -> int:
        if self.reader.heartbeat_age > 0.5:
            self.reader.reattach()
        if self.reader.write_pos != self._seen:
            self._seen = self.reader.write_pos
            self.arrivals.tick()
        return self.reader.available

    def read(self, n: int) -> np.ndarray:
        self.arrivals.playing = True
        return self.reader.read(n)

    def skip(self, keep: int) -> None:
        self.reader.skip_to_latest(keep)

    @property
    def position(self) -> int:
        return self.reader.stream_pos

    def close(self) -> None:
        self.reader.close()


class PubStream:
    """The ZMQ PUB audio topic as the speaker's source, collected into a small FIFO."""

    def __init__(self, address: str) -> None:
        self.sub = AudioSubscriber(address)
        self.arrivals = ArrivalClock()
        self._fifo = np.zeros((0, 2), dtype=np.float32)
        self.position = 0            # stream position of the FIFO's first sample

    def available(self) -> int:
        while (block := self.sub.recv(0.0)) is not None:
            end = self.sub.last_header.get("pos", 0) + len(block)
            self._fifo = np.concatenate([self._fifo, block])[-8 * BLOCK:]
            self.position = end - len(self._fifo)
            self.arrivals.tick()
        return len(self._fifo)

    def read(self, n: int) -> np.ndarray:
        self.arrivals.playing = True
        out, self._fifo = self._fifo[:n], self._fifo[n:]
        self.position += len(out)
        return out

    def skip(self, keep: int) -> None:
        self.position += max(len(self._fifo) - keep, 0)
        self._fifo = self._fifo[-keep:] if keep else self._fifo[:0]

    def close(self) -> None:
        self.sub.close()


class MusicLink:
    def __init__(self, connect: str | None = None, transport: str = "ring",
                 record: str | None = None, lookahead: int = LOOKAHEAD, cushion: float = CUSHION) -> None:
        self.server: subprocess.Popen | None = None
        if connect is None:
            connect = self._start_server(lookahead)
        try:
            self.client = self._connect(connect)
            status = self.client.status
            self.transport = transport if status.get("ring") else "zmq"
            self.stream = (RingStream(status["ring"]) if self.transport == "ring"
                           else PubStream(status["audio"]))
            self.speaker = Speaker(self.stream, int(cushion * BLOCK), record)
        except BaseException:
            self._stop_server()          # never leave a server we started behind
            raise
        self.status: dict = dict(status)
        self.sent: dict[int, float] = {}            # message id -> time.monotonic() when sent
        self.awaiting: deque[tuple[int, float]] = deque(maxlen=256)   # (stream pos, sent) not yet heard
        self.latencies_ms: deque[float] = deque(maxlen=2000)          # message -> first affected sample heard
        self._last: dict[str, object] = {}
        self._notes_off_at: float | None = None
        self._status_due = 0.0

    @property
    def frames_played(self) -> int:
        return self.speaker.frames_played

    # -- server -------------------------------------------------------------------------
    def _start_server(self, lookahead: int) -> str:
        control, audio, web = free_ports(3)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "scorewright.cli", "--log-level", "warning", "serve", str(MAP),
             "--control-port", str(control), "--audio-port", str(audio), "--tcp-port", "0",
             "--web-port", str(web), "--lookahead", str(lookahead),
             "--ring", f"game-{uuid.uuid4().hex[:8]}"], stdin=subprocess.DEVNULL)
        print(f"sample-game: music by `scorewright serve`; watch and shape it live with "
              f"`scorewright studio --attach http://127.0.0.1:{web}/`", file=sys.stderr)
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
        self.sent[msg_id] = time.monotonic()

    def update_state(self, area: str, boss: bool, danger: float) -> None:
        self._send("state", "area", area, group="area", value=area)
        self._send("state", "boss", boss, group="boss", value="fighting" if boss else "absent")
        self._send("set", "danger", round(danger, 2), param="danger", value=round(danger, 2))

    def event(self, name: str) -> None:
        self.sent[self.client.send("event", name=name)] = time.monotonic()

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
            elif reply.get("type") == "ok" and reply.get("id") in self.sent and "pos" in reply:
                self.awaiting.append((reply["pos"], self.sent.pop(reply["id"])))
            if len(self.sent) > 256:                 # replies that never came (a restarted server)
                self.sent.pop(next(iter(self.sent)))
        self._hear()
        if time.monotonic() > self._status_due:
            self._status_due = time.monotonic() + 0.25
            self.client.send("status")

    def _hear(self) -> None:
        """Latency measured on the sound card's own clock: a message's first affected sample
        (the reply's `pos`) is heard when the chunk holding it leaves the device buffer."""
        if not self.awaiting:
            return
        played = list(self.speaker.played)          # a copy: the audio thread appends to it
        while self.awaiting and played and self.awaiting[0][0] < played[-1].pos + played[-1].taken:
            pos, sent = self.awaiting.popleft()
            chunk = next((c for c in played if c.pos <= pos < c.pos + c.taken), None)
            if chunk is not None:                   # else it played during a gap or a skip
                self.latencies_ms.append((chunk.heard_at(pos) - sent) * 1000)

    @property
    def latency_ms(self) -> float | None:
        return self.latencies_ms[-1] if self.latencies_ms else None

    # -- audio out -------------------------------------------------------------------------
    def start_audio(self) -> None:
        sys.setswitchinterval(0.001)   # SDL's audio thread gets the GIL within 1 ms of asking
        self.speaker.start()

    def close(self) -> None:
        self.speaker.close()
        self.stream.close()
        self.client.close()
        self._stop_server()

    def _stop_server(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
