"""Stingers: one-shot musical answers to events, landing on the next beat or bar, with
cooldowns, their own style, drums and motif, and the states they leave behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..audio import FRAME_SECONDS
from ..conditioning import DRUMS_FREE
from .clock import Clock, boundary
from .errors import InputError
from .model import Motif, StateMap, Stinger


@dataclass
class Playing:
    stinger: Stinger
    start_beat: float
    end_beat: float
    gain: float = 1.0
    ended: bool = False          # its last beat passed (its `then` states were set)


class Stingers:
    """The stinger that plays (at most one), the one waiting for its beat, and cooldowns."""

    def __init__(self, smap: StateMap) -> None:
        self.map = smap
        self.ignored = 0
        self.reset()

    def reset(self) -> None:
        self.playing: Playing | None = None
        self.pending: Stinger | None = None
        self.last_start: dict[str, int] = {}    # event -> frame it was last triggered

    def trigger(self, event: str, frame: int) -> bool:
        """Fire an event; returns False when a stinger ignored it (cooldown)."""
        if event not in self.map.events:
            raise InputError("unknown_event", f"unknown event '{event}'; this map has: "
                             f"{', '.join(sorted(self.map.events)) or 'no events'}")
        s = self.map.stingers.get(event)
        if s is None:
            return True
        last = self.last_start.get(event)
        if last is not None and (frame - last) * FRAME_SECONDS * 1000 < s.cooldown_ms:
            self.ignored += 1
            return False
        self.pending = s
        self.last_start[event] = frame
        return True

    def apply(self, weights: dict[str, float], clock: Clock,
              set_state: Callable[[str, str], None]) -> dict[str, float]:
        """One frame: land a pending stinger (and mark it), end it on its last beat (setting its
        `then` states) and fade it out; returns the style weights with the stinger's style mixed
        in by its gain. A stinger takes over at once from its landing; `fade_ms` is its way out."""
        if self.pending is not None:
            s = self.pending
            start = boundary(clock.beat, s.at, self.map.beats_per_bar)
            if clock.inside(start):
                start = max(start, clock.beat)
                length = s.beats if s.beats is not None else (s.bars or 1) * self.map.beats_per_bar
                self.playing, self.pending = Playing(s, start, start + length), None
                clock.mark("stinger", start, s.event)
                clock.land(start)
        st = self.playing
        if st is None:
            return weights
        if not st.ended and clock.inside(st.end_beat):
            st.ended = True
            clock.land(st.end_beat)
            for group, value in st.stinger.then_state.items():
                set_state(group, value)
        if st.ended:
            st.gain = 0.0 if st.stinger.fade_ms <= 0 else max(
                0.0, st.gain - FRAME_SECONDS * 1000 / st.stinger.fade_ms)
            if st.gain <= 0.0:
                self.playing = None
                return weights
        if st.stinger.style is None:
            return weights
        total = sum(weights.values()) or 1.0
        out = {k: (1.0 - st.gain) * v / total for k, v in weights.items()}
        out[st.stinger.style] = out.get(st.stinger.style, 0.0) + st.gain
        return out

    def drums(self) -> int | None:
        """The drums a stinger asks for from its landing to its end (None: it does not decide)."""
        if self.playing is not None and not self.playing.ended:
            d = self.playing.stinger.drums
            return DRUMS_FREE if d is None else d
        return None

    def motif(self) -> tuple[Motif, float] | None:
        """The stinger's motif and the beat it started on, from its landing to its end."""
        if self.playing is not None and not self.playing.ended and self.playing.stinger.notes is not None:
            return self.playing.stinger.notes, self.playing.start_beat
        return None
