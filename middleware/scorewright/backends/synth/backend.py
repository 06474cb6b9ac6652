"""SynthBackend: the default generator (text style space + arranger + SoundFont)."""

from __future__ import annotations

import heapq
import math
from dataclasses import replace

import numpy as np

from ...audio import FRAME_SAMPLES, SAMPLE_RATE
from ...conditioning import NOTE_HELD, NOTE_ONSET, Conditioning, unit
from ..base import Backend, BackendUnavailable
from . import requirements
from .analysis import onset_rate, spectral_centroid, tempo_estimate
from .arranger import (
    DRUM_CHANNEL,
    GAME_LEAD_CHANNEL,
    ROLE_LEVEL,
    STEPS_PER_BEAT,
    Arranger,
    NoteEvent,
)
from .embedder import TextEmbedder
from .presets import PRESETS
from .render import SoundFontRenderer

PRESET_TEMPERATURE = 0.04   # softmax temperature over cosine similarities to presets
GAME_LEAD_LEVEL = 0.85


class SynthBackend(Backend):
    """Procedural adaptive music: prompts become a mix of style presets, an arranger plays
    them on the beat clock, a General MIDI SoundFont renders the notes."""

    name = "synth"

    def __init__(self, embedder: TextEmbedder | None = None, renderer: SoundFontRenderer | None = None,
                 seed: int = 0) -> None:
        if (embedder is None or renderer is None) and (missing := requirements.missing_packages()):
            raise BackendUnavailable(requirements.missing_message(missing))
        self.embedder = embedder or TextEmbedder()
        self.style_dim = self.embedder.dim
        self.preset_matrix = np.stack([self.embedder.embed(p.description) for p in PRESETS])
        self.renderer = renderer or SoundFontRenderer()
        self.arranger = Arranger(seed)
        self.reset(seed)

    # -- style space ------------------------------------------------------------------
    def embed_text(self, text: str) -> np.ndarray:
        return self.embedder.embed(text)

    def embed_audio(self, pcm: np.ndarray, sr: int) -> np.ndarray:
        """Place a clip in style space by matching its tempo, brightness and note rate
        against the presets (a descriptor match, not a learned audio encoder)."""
        tempo = tempo_estimate(pcm, sr) or 100.0
        bright = np.clip((spectral_centroid(pcm, sr) - 500) / 2500, 0, 1)
        rate = onset_rate(pcm, sr)
        dist = np.array([
            abs(math.log2(tempo / p.tempo)) + abs(bright - p.brightness)
            + abs(math.log2((rate + 0.5) / (p.density * p.tempo / 60 + 0.5))) / 2
            for p in PRESETS])
        w = np.exp(-(dist - dist.min()) / 0.15)
        return unit((w / w.sum()) @ self.preset_matrix)

    def preset_weights(self, style: np.ndarray) -> np.ndarray:
        """Softmax over cosine similarity of the style to each preset."""
        sims = self.preset_matrix @ style
        w = np.exp((sims - sims.max()) / PRESET_TEMPERATURE)
        return w / w.sum()

    def preferred_tempo(self, style: np.ndarray) -> float:
        """The tempo the preset mix asks for (geometric mean, so blends stay musical)."""
        w = self.preset_weights(style)
        return float(np.exp(w @ np.log([p.tempo for p in PRESETS])))

    def key(self) -> tuple[int, str]:
        return self.arranger.key

    # -- streaming --------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        self.seed = self.arranger.seed if seed is None else seed
        self.arranger.reset(self.seed)
        self.renderer.reset()
        self._pending: list[NoteEvent] = []
        self._next_step: int | None = None
        self._last_beat = -math.inf
        self._game: dict[int, int] = {}      # requested pitch -> sounding pitch

    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        out = []
        beats_per_frame = cond.tempo_bpm / 60 * FRAME_SAMPLES / SAMPLE_RATE
        for i in range(n_frames):
            c = cond if i == 0 else _advanced(cond, i * beats_per_frame)
            out.append(self._frame(c))
        return np.concatenate(out)

    def _frame(self, cond: Conditioning) -> np.ndarray:
        if cond.seed != self.seed or cond.beat < self._last_beat - 1e-6:
            self.reset(cond.seed)
        beats_per_sample = cond.tempo_bpm / 60 / SAMPLE_RATE
        b0, b1 = cond.beat, cond.beat + FRAME_SAMPLES * beats_per_sample
        self._last_beat = b1
        arr = self.arranger
        arr.set_mix(self.preset_weights(cond.style))
        step = self._next_step if self._next_step is not None else math.ceil(b0 * STEPS_PER_BEAT - 1e-9)
        while step < b1 * STEPS_PER_BEAT - 1e-9:
            for e in arr.step_events(step, cond.beats_per_bar, cond.temperature, cond.drums):
                heapq.heappush(self._pending, e)
            step += 1
        self._next_step = step
        self._game_notes(cond, b0)
        arr.advance_gains(b1 - b0, cond.beats_per_bar, cond.drums)
        self._apply_channels()
        events = []
        while self._pending and self._pending[0].beat < b1:
            e = heapq.heappop(self._pending)
            offset = min(FRAME_SAMPLES - 1, max(0, int((e.beat - b0) / beats_per_sample)))
            events.append((offset, e.channel, e.note, e.velocity))
        return self.renderer.render(events, FRAME_SAMPLES)

    def _apply_channels(self) -> None:
        r = self.renderer
        for ch, prog in self.arranger.program_changes:
            r.program(ch, prog)
        self.arranger.program_changes.clear()
        for slot in self.arranger.slots:
            for role, level in ROLE_LEVEL.items():
                r.volume(slot.channel(role), level * math.sqrt(slot.gain))
        r.volume(DRUM_CHANNEL, 0.9)
        r.volume(GAME_LEAD_CHANNEL, GAME_LEAD_LEVEL)

    def _game_notes(self, cond: Conditioning, b0: float) -> None:
        """Play the conditioning's piano roll on a lead voice, in key, on the 16th grid."""
        at = math.ceil(b0 * STEPS_PER_BEAT - 1e-9) / STEPS_PER_BEAT
        notes = cond.notes
        for pitch in list(self._game):
            if notes[pitch] not in (NOTE_HELD, NOTE_ONSET) or notes[pitch] == NOTE_ONSET:
                heapq.heappush(self._pending, NoteEvent(b0, GAME_LEAD_CHANNEL, self._game.pop(pitch), 0))
        wanted = np.flatnonzero((notes == NOTE_HELD) | (notes == NOTE_ONSET))
        if len(wanted) and not self._game:
            self.renderer.program(GAME_LEAD_CHANNEL, self.arranger.preset.lead)
        for pitch in wanted:
            if int(pitch) not in self._game:
                sounding = self.arranger.snap_to_key(int(pitch))
                self._game[int(pitch)] = sounding
                heapq.heappush(self._pending, NoteEvent(at, GAME_LEAD_CHANNEL, sounding, 100))


def _advanced(cond: Conditioning, beats: float) -> Conditioning:
    return replace(cond, beat=cond.beat + beats)
