"""The arranger: turns a preset mix and the beat clock into MIDI note events.

Musical decisions only (no audio). Everything random is drawn from generators seeded by
(seed, what, where), so the same conditioning sequence always yields the same notes, however
the stream is cut into frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .presets import DRUM_PATTERNS, MODES, PRESETS, StylePreset

STEPS_PER_BEAT = 4          # the grid is 16th notes
MAX_SLOTS = 3               # presets that can sound at once
MIN_SLOT_WEIGHT = 0.1       # presets below this share of the mix stay silent
DRUM_CHANNEL = 9
GAME_LEAD_CHANNEL = 10
ROLES = ("pad", "bass", "lead")
ROLE_LEVEL = {"pad": 0.55, "bass": 0.8, "lead": 0.72}
FALLBACK_DRUMS = "folk"     # played when drums are forced on but the mix has none
CROSSFADE_BEATS = 1.0       # slot gains move from 0 to 1 over this many beats
ENTRY_MIN_BEATS = 0.25      # an entering slot joins a pad or bass note only if this much is left


@dataclass(order=True)
class NoteEvent:
    """A note-on (velocity > 0) or note-off (velocity 0) at a beat position."""

    beat: float
    channel: int
    note: int
    velocity: int


@dataclass
class Slot:
    """A group of three channels (pad, bass, lead) playing one preset."""

    index: int
    preset: int | None = None
    gain: float = 0.0
    target: float = 0.0

    def channel(self, role: str) -> int:
        return self.index * 3 + ROLES.index(role)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *(k & 0xFFFFFFFF for k in keys)])


def _level(pattern: str, step: int) -> int:
    c = pattern[step % len(pattern)]
    return 0 if c == "." else int(c)


class Arranger:
    """Schedules pad, bass, melody and drums for up to MAX_SLOTS presets on a 16th grid."""

    def __init__(self, seed: int = 0) -> None:
        self.reset(seed)

    def reset(self, seed: int = 0) -> None:
        self.seed = seed
        self.slots = [Slot(i) for i in range(MAX_SLOTS)]
        self.dominant = 0
        self.pending_dominant: int | None = None
        self.mix = np.zeros(len(PRESETS))
        self.drum_gain = 0.0
        self.program_changes: list[tuple[int, int]] = []   # (channel, program) to apply

    # -- harmony -------------------------------------------------------------------------
    @property
    def preset(self) -> StylePreset:
        return PRESETS[self.dominant]

    @property
    def key(self) -> tuple[int, str]:
        """(root pitch class, mode) of the current harmony."""
        return self.preset.root, self.preset.mode

    def scale_pitch(self, degree: int, base: int) -> int:
        """MIDI pitch of a scale degree, in the octave starting at or above `base`."""
        root, mode = self.key
        return base + ((root + MODES[mode][degree % 7] - base) % 12) + 12 * (degree // 7)

    def snap_to_key(self, pitch: int) -> int:
        """Nearest pitch of the current scale (ties go down)."""
        root, mode = self.key
        pcs = {(root + i) % 12 for i in MODES[mode]}
        for d in (0, -1, 1, -2, 2):
            if (pitch + d) % 12 in pcs:
                return pitch + d
        return pitch

    def chord(self, bar: int) -> list[int]:
        """Scale degrees of the bar's chord (triad, or seventh chord for jazzy presets)."""
        p = self.preset
        d = p.progression[bar % len(p.progression)]
        degrees = [d, d + 2, d + 4] + ([d + 6] if p.sevenths else [])
        return degrees

    def _chord_pitches(self, bar: int, low: int, high: int) -> list[int]:
        root, mode = self.key
        scale = MODES[mode]
        pcs = [(root + scale[d % 7]) % 12 for d in self.chord(bar)]
        return [n for n in range(low, high + 1) if n % 12 in pcs]

    # -- mix ---------------------------------------------------------------------------
    def set_mix(self, weights: np.ndarray, beat: float, beats_per_bar: int) -> list[NoteEvent]:
        """Preset weights wanted from `beat` on: slots follow at once (a slot that enters joins
        its pad and bass where they are, at `beat`), harmony on a bar line (this one if `beat`
        is on it, or the stream's first). Returns the entering slots' notes."""
        if np.array_equal(weights, self.mix):
            return []
        self.mix = weights
        first = all(s.preset is None for s in self.slots)
        entered = self._assign_slots()
        on_bar = abs(beat / beats_per_bar - round(beat / beats_per_bar)) < 1e-9
        if self.pending_dominant is not None and (first or on_bar):
            self.dominant, self.pending_dominant = self.pending_dominant, None
        return [e for slot in entered for e in self._entry(slot, beat, beats_per_bar)]

    def _assign_slots(self) -> list[Slot]:
        """Slot targets for the mix (each preset's share of it); returns the slots given a new
        preset."""
        order = np.argsort(-self.mix)[:MAX_SLOTS]
        chosen = {int(i): float(self.mix[i]) for i in order if self.mix[i] >= MIN_SLOT_WEIGHT}
        if not chosen:
            chosen = {int(order[0]): 1.0}
        for slot in self.slots:
            slot.target = chosen.pop(slot.preset, 0.0) if slot.preset is not None else 0.0
        entered = []
        for preset, w in sorted(chosen.items(), key=lambda kv: -kv[1]):
            free = [s for s in self.slots if s.target == 0.0 and s.gain == 0.0]
            slot = free[0] if free else min(self.slots, key=lambda s: (s.target, s.gain))
            slot.preset, slot.target = preset, w
            slot.gain = 0.0 if free else slot.gain
            p = PRESETS[preset]
            self.program_changes += [(slot.channel("pad"), p.pad), (slot.channel("bass"), p.bass),
                                     (slot.channel("lead"), p.lead)]
            entered.append(slot)
        best = int(np.argmax(self.mix))
        if best != self.dominant and self.mix[best] > self.mix[self.dominant] + 0.05:
            self.pending_dominant = best
        return entered

    def set_drums(self, drums: int) -> None:
        """Drums off (0) or not, from now: they stop or come in on the next step."""
        self.drum_gain = 0.0 if drums == 0 else 1.0

    def advance_gains(self, beats: float) -> None:
        """Move slot gains toward their targets: a full cross-fade takes one beat (the director
        already fades style weights over the map's fade times; this only smooths the joins)."""
        rate = beats / CROSSFADE_BEATS
        for s in self.slots:
            s.gain = min(s.target, s.gain + rate) if s.target > s.gain else max(s.target, s.gain - rate)
            if s.gain == 0.0 and s.target == 0.0:
                s.preset = None

    def _entry(self, slot: Slot, beat: float, beats_per_bar: int) -> list[NoteEvent]:
        """A slot entering at `beat` between its pad's or bass's own onsets plays what they
        last struck (within two bars), from `beat` to where it ends."""
        spb = STEPS_PER_BEAT * beats_per_bar
        p = PRESETS[slot.preset]
        now = beat * STEPS_PER_BEAT
        out: list[NoteEvent] = []
        for part in (self._pad, self._bass):
            struck, step = [], math.floor(now + 1e-9)
            while not struck and step >= max(0, math.ceil(now) - 2 * spb):
                bar, pos = divmod(step, spb)
                struck = part(slot, p, bar, pos, spb, step / STEPS_PER_BEAT)
                step -= 1
            if not struck or step + 1 >= now - 1e-9:
                continue            # nothing struck lately, or struck on this very step (it plays)
            ends = {(e.channel, e.note): e.beat for e in struck if e.velocity == 0}
            for e in struck:
                end = ends.get((e.channel, e.note), beat)
                if e.velocity > 0 and end - beat >= ENTRY_MIN_BEATS:
                    out += [NoteEvent(beat, e.channel, e.note, e.velocity),
                            NoteEvent(end, e.channel, e.note, 0)]
        return out

    # -- events ------------------------------------------------------------------------
    def step_events(self, step: int, beats_per_bar: int, temperature: float,
                    drums: int) -> list[NoteEvent]:
        """All note events that start on 16th step `step` (note-offs included, in the future)."""
        spb = STEPS_PER_BEAT * beats_per_bar
        bar, pos = divmod(step, spb)
        if pos == 0 and self.pending_dominant is not None:
            self.dominant, self.pending_dominant = self.pending_dominant, None
        events: list[NoteEvent] = []
        for slot in self.slots:
            if slot.preset is None:
                continue
            p = PRESETS[slot.preset]
            beat = step / STEPS_PER_BEAT + (p.swing / STEPS_PER_BEAT if step % 2 else 0.0)
            events += self._pad(slot, p, bar, pos, spb, beat)
            events += self._bass(slot, p, bar, pos, spb, beat)
            events += self._lead(slot, p, bar, pos, spb, beat, temperature)
        events += self._drums(step, bar, pos, spb, temperature, drums)
        return events

    def _notes(self, ch: int, pitches: list[int], beat: float, dur: float, vel: float,
               stagger: float = 0.0) -> list[NoteEvent]:
        v = int(np.clip(round(vel), 1, 127))
        out = []
        for i, n in enumerate(pitches):
            out += [NoteEvent(beat + i * stagger, ch, n, v), NoteEvent(beat + i * stagger + dur, ch, n, 0)]
        return out

    def _pad(self, slot: Slot, p: StylePreset, bar: int, pos: int, spb: int,
             beat: float) -> list[NoteEvent]:
        ch, vel = slot.channel("pad"), 50 + 40 * p.energy
        voicing = self._chord_pitches(bar, 55, 74)[:4]
        if p.pad_style == "sustain" and pos == 0:
            return self._notes(ch, voicing, beat, spb / STEPS_PER_BEAT - 0.05, vel)
        if p.pad_style == "pulse" and pos % 2 == 0:
            accent = 1.0 if pos % STEPS_PER_BEAT == 0 else 0.8
            return self._notes(ch, voicing[:3], beat, 0.38, vel * accent)
        if p.pad_style == "strum" and pos % (spb // 2) == 0:
            return self._notes(ch, voicing, beat, spb / STEPS_PER_BEAT / 2 - 0.1, vel, stagger=0.03)
        if p.pad_style == "arp":
            tones = self._chord_pitches(bar, 60, 84)
            cycle = tones + tones[-2:0:-1]
            return self._notes(ch, [cycle[pos % len(cycle)]], beat, 0.24, vel * 0.9)
        return []

    def _bass(self, slot: Slot, p: StylePreset, bar: int, pos: int, spb: int,
              beat: float) -> list[NoteEvent]:
        ch, vel = slot.channel("bass"), 70 + 40 * p.energy
        chord = [d % 7 for d in self.chord(bar)]          # bass stays in its octave
        root = self.scale_pitch(chord[0], 36)
        fifth = self.scale_pitch(chord[2], root)
        bar_beats = spb / STEPS_PER_BEAT
        style = p.bass_style
        if style == "root" and pos % (spb // 2) == 0:
            return self._notes(ch, [root if pos == 0 else fifth], beat, bar_beats / 2 - 0.1, vel)
        if style == "pulse" and pos % 2 == 0:
            return self._notes(ch, [root], beat, 0.4, vel * (1.0 if pos % 4 == 0 else 0.8))
        if style == "octave" and pos % 2 == 0:
            return self._notes(ch, [root + (12 if pos % 4 else 0)], beat, 0.4, vel)
        if style == "drone" and pos == 0 and bar % 2 == 0:
            return self._notes(ch, [root, fifth], beat, 2 * bar_beats - 0.1, vel * 0.8)
        if style == "walk" and pos % STEPS_PER_BEAT == 0:
            beat_i = pos // STEPS_PER_BEAT
            tones = [root, self.scale_pitch(chord[1], root), fifth]
            if beat_i == spb // STEPS_PER_BEAT - 1:   # approach the next bar's root
                nxt = self.scale_pitch(self.chord(bar + 1)[0] % 7, 36)
                pitch = nxt + (1 if _rng(self.seed, bar, 7).random() < 0.5 else -1)
            else:
                pitch = tones[beat_i % 3]
            return self._notes(ch, [pitch], beat, 0.9, vel)
        return []

    def _lead(self, slot: Slot, p: StylePreset, bar: int, pos: int, spb: int, beat: float,
              temperature: float) -> list[NoteEvent]:
        # A two-bar motif per (preset, A/B section) repeats, so melodies have a shape;
        # temperature re-rolls notes of it, so higher temperature means more variation.
        section = (bar // 2) % 2
        motif_step = (bar % 2) * spb + pos
        rng = _rng(self.seed, 1000 + slot.preset, section, motif_step)
        fresh = _rng(self.seed, 2000 + slot.preset, bar, pos)
        if fresh.random() < 0.25 * temperature:
            rng = fresh
        accent = 1.6 if pos % STEPS_PER_BEAT == 0 else (1.0 if pos % 2 == 0 else 0.45)
        if bar % 4 == 3 and pos >= spb // 2:       # let the phrase breathe
            accent *= 0.2
        if rng.random() >= min(0.95, p.density / STEPS_PER_BEAT * accent):
            return []
        base = 60 + int(round(p.brightness * 10))
        if pos % STEPS_PER_BEAT == 0:
            degree = self.chord(bar)[int(rng.integers(0, 3))]
        else:
            degree = self.chord(bar)[0] + int(rng.integers(-2, 6))
        pitch = self.scale_pitch(degree, base)
        while pitch > base + 14:                           # keep the tune in a singable range
            pitch -= 12
        while pitch < base - 5:
            pitch += 12
        dur = float(rng.choice([0.25, 0.5, 0.5, 0.75, 1.0])) * (1.0 + 1.0 / max(p.density, 0.3)) / 2
        vel = (55 + 45 * p.brightness) * (0.85 + 0.3 * rng.random() * min(temperature, 1.5))
        return self._notes(slot.channel("lead"), [pitch], beat, dur, vel)

    def _drums(self, step: int, bar: int, pos: int, spb: int, temperature: float,
               drums: int) -> list[NoteEvent]:
        if self.drum_gain <= 0.0:
            return []
        active = [(s.gain, PRESETS[s.preset]) for s in self.slots if s.preset is not None and s.gain > 0]
        total = sum(g for g, _ in active) or 1.0
        patterns = [(g / total, DRUM_PATTERNS[p.drums]) for g, p in active]
        if drums == 1 and not any(pat for _, pat in patterns):
            patterns = [(1.0, DRUM_PATTERNS[FALLBACK_DRUMS])]
        energy = sum(g * p.energy for g, p in active) / total if active else 0.7
        swing = sum(g * p.swing for g, p in active) / total if active else 0.0
        beat = step / STEPS_PER_BEAT + (swing / STEPS_PER_BEAT if step % 2 else 0.0)
        rng = _rng(self.seed, 3000, step)
        levels: dict[int, float] = {}
        for w, pat in patterns:
            for key, row in pat.items():
                levels[key] = levels.get(key, 0.0) + w * _level(row, pos % 16)
        if bar % 4 == 3 and pos >= spb - STEPS_PER_BEAT and rng.random() < 0.5 * temperature:
            levels = {45 - 2 * ((pos % 4) // 2): 7.0, 36: levels.get(36, 0.0)}   # tom fill
        events: list[NoteEvent] = []
        for key, lv in sorted(levels.items()):
            if lv >= 3.0 or (lv > 0 and rng.random() < lv / 3.0):
                vel = (30 + 10 * lv) * (0.6 + 0.4 * energy) * self.drum_gain
                vel *= 1.0 + 0.15 * temperature * (rng.random() - 0.5)
                events += self._notes(DRUM_CHANNEL, [key], beat, 0.2, vel)
        return events
