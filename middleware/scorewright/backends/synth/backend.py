"""SynthBackend: the default generator (text style space + arranger + SoundFont)."""

from __future__ import annotations

import heapq
import math
from dataclasses import replace

import numpy as np

from ...audio import FRAME_SAMPLES, SAMPLE_RATE
from ...conditioning import NOTE_HELD, NOTE_ONSET, Conditioning, frame_offset, unit
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

    def style_vector(self, embedding: np.ndarray) -> np.ndarray:
        """A style enters blends as its unit embedding followed by its preset weights, so a blend
        of styles plays a blend of their presets: a fade moves the mix from its first frame
        (a blend of embeddings would jump to whichever preset is nearest the midpoint)."""
        e = np.asarray(embedding, np.float32)
        if len(e) == self.style_dim + len(PRESETS):     # already a blend (a map's blend style)
            return e
        return np.concatenate([unit(e), self.preset_weights(unit(e))]).astype(np.float32)

    def blend(self, vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The weighted mean of the styles' preset weights, after their unit-length embedding
        blend (kept for whatever reads `style` as a point in text space)."""
        total = float(weights.sum())
        if not total > 0:
            return np.zeros(vectors.shape[1], np.float32)
        mean = (weights.astype(np.float64) / total) @ vectors
        return np.concatenate([unit(mean[:self.style_dim]), mean[self.style_dim:]]).astype(np.float32)

    def preset_weights(self, style: np.ndarray) -> np.ndarray:
        """The preset weights of a blend, or of an embedding: the softmax over its cosine
        similarity to each preset."""
        if len(style) == self.style_dim + len(PRESETS):
            return np.asarray(style[self.style_dim:], np.float64)
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
        self._cond: Conditioning | None = None   # what sounds now (the last frame's, until its change)

    def generate(self, cond: Conditioning, n_frames: int = 1) -> np.ndarray:
        out = []
        beats_per_frame = cond.tempo_bpm / 60 * FRAME_SAMPLES / SAMPLE_RATE
        for i in range(n_frames):
            c = cond if i == 0 else _advanced(cond, i * beats_per_frame)
            out.append(self._frame(c))
        return np.concatenate(out)

    def _frame(self, cond: Conditioning) -> np.ndarray:
        """One frame, played in two parts where the conditioning changes inside it: up to its
        `change_beat` what sounded goes on, from there the new conditioning."""
        if cond.seed != self.seed or cond.beat < self._last_beat - 1e-6:
            self.reset(cond.seed)
        b0, b1 = cond.beat, cond.beat + cond.tempo_bpm / 60 * FRAME_SAMPLES / SAMPLE_RATE
        self._last_beat = b1
        if self._next_step is None:
            self._next_step = math.ceil(b0 * STEPS_PER_BEAT - 1e-9)
        prev, at, cut = self._cond, b0, 0
        if prev is not None and cond.change_beat is not None and _changes(prev, cond):
            at, cut = cond.change_beat, frame_offset(cond.change_beat, b0, cond.tempo_bpm)
        parts = []
        if cut > 0:
            parts.append(self._play(prev, (b0, at), (0, cut), cond))
        self._change(cond, at)
        parts.append(self._play(cond, (at, b1), (cut, FRAME_SAMPLES), cond))
        return self.renderer.finish(np.concatenate(parts) if cut > 0 else parts[0])

    def _change(self, cond: Conditioning, at: float) -> None:
        """`cond` takes over at beat `at`: its preset mix, drums and game notes."""
        self._cond = cond
        for e in self.arranger.set_mix(self.preset_weights(cond.style), at, cond.beats_per_bar):
            heapq.heappush(self._pending, e)
        self.arranger.set_drums(cond.drums)
        self._game_notes(cond, at)

    def _play(self, cond: Conditioning, beats: tuple[float, float], samples: tuple[int, int],
              frame: Conditioning) -> np.ndarray:
        """The part of `frame` spanning `beats` and `samples` under `cond`: its 16th steps, the
        slots' gains and channel settings from its start, and the notes that fall in it."""
        arr = self.arranger
        step = self._next_step
        while step < beats[1] * STEPS_PER_BEAT - 1e-9:
            for e in arr.step_events(step, cond.beats_per_bar, cond.temperature, cond.drums):
                heapq.heappush(self._pending, e)
            step += 1
        self._next_step = step
        arr.advance_gains(beats[1] - beats[0])
        self._apply_channels()
        frame_end = frame.beat + frame.tempo_bpm / 60 * FRAME_SAMPLES / SAMPLE_RATE
        events = []
        while self._pending and self._pending[0].beat < frame_end - 1e-9:
            offset = frame_offset(self._pending[0].beat, frame.beat, frame.tempo_bpm)
            if offset >= samples[1]:
                break
            e = heapq.heappop(self._pending)
            events.append((max(offset - samples[0], 0), e.channel, e.note, e.velocity))
        return self.renderer.play(events, samples[1] - samples[0])

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

    def _game_notes(self, cond: Conditioning, at: float) -> None:
        """Play the conditioning's piano roll on a lead voice, in key, from beat `at`."""
        notes = cond.notes
        for pitch in list(self._game):
            if notes[pitch] not in (NOTE_HELD, NOTE_ONSET) or notes[pitch] == NOTE_ONSET:
                heapq.heappush(self._pending, NoteEvent(at, GAME_LEAD_CHANNEL, self._game.pop(pitch), 0))
        wanted = np.flatnonzero((notes == NOTE_HELD) | (notes == NOTE_ONSET))
        if len(wanted) and not self._game:
            self.renderer.program(GAME_LEAD_CHANNEL, self.arranger.preset.lead)
        for pitch in wanted:
            if int(pitch) not in self._game:
                sounding = self.arranger.snap_to_key(int(pitch))
                self._game[int(pitch)] = sounding
                heapq.heappush(self._pending, NoteEvent(at, GAME_LEAD_CHANNEL, sounding, 100))


def _advanced(cond: Conditioning, beats: float) -> Conditioning:
    return replace(cond, beat=cond.beat + beats, change_beat=None)


def _changes(prev: Conditioning, cond: Conditioning) -> bool:
    """Does `cond` change what the synth plays from `prev`? (Tempo and position aside.)"""
    return (prev.drums != cond.drums or prev.temperature != cond.temperature
            or prev.beats_per_bar != cond.beats_per_bar or not np.array_equal(prev.style, cond.style)
            or not np.array_equal(prev.notes, cond.notes))
