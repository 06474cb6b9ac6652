"""Style presets: points in the text-embedding space that carry arrangement settings."""

from __future__ import annotations

from dataclasses import dataclass

# Scale intervals (semitones above the root) for the modes the presets use.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}

# 16-step drum patterns: GM drum key -> one velocity digit per 16th (0-9, '.' = rest).
DRUM_PATTERNS: dict[str, dict[int, str]] = {
    "none": {},
    "ambient": {36: "5.......3.......", 51: "..3...3...3...3.", 70: "2.2.2.2.2.2.2.2."},
    "orchestral": {36: "9..7..9.9..7..8.", 38: "....8.......8.36", 47: "......6.......6.",
                   49: "8...............", 42: "5.5.5.5.5.5.5.5."},
    "chiptune": {36: "9...9...9...9...", 38: "....8.......8...", 42: "6.6.6.6.6.6.6.6."},
    "horror": {35: "7...............", 41: "..........5.....", 81: "......3........."},
    "jazz": {51: "6..46.6..46.6..4", 44: "....5.......5...", 36: "4.........3.....",
             37: "......3.......3."},
    "folk": {36: "7.......6.......", 54: "..5...5...5...5.", 39: "....6.......6..."},
    "synthwave": {36: "9...9...9...9...", 38: "....9.......9...", 42: "5.7.5.7.5.7.5.7.",
                  46: "..............6."},
    "epic": {36: "9.7.9.7.9.7.9.7.", 38: "....9.......9.77", 41: "..6...6...6...6.",
             49: "9...............", 42: "6666666666666666"},
    "fanfare": {38: "7.5.7.5.7.5.9999", 36: "9.......9.......", 49: "9..............."},
    "stealth": {37: "....5.......5...", 42: "3.3.3.3.3.3.3.3.", 35: "6.....5........."},
    "tavern": {36: "8.....6.8.....6.", 54: "5.5.5.5.5.5.5.5.", 37: "....6.......6..."},
    "rock": {36: "9.....7.9.7.....", 38: "....9.......9...", 42: "7.6.7.6.7.6.7.6."},
}


@dataclass(frozen=True)
class StylePreset:
    """One musical style the synth can play; `description` places it in style space."""

    name: str
    description: str
    tempo: float
    root: int            # pitch class of the key, 0 = C
    mode: str
    progression: tuple[int, ...]   # scale degree (0-based) of each bar's chord
    pad: int             # General MIDI programs (0-based)
    bass: int
    lead: int
    pad_style: str       # sustain | pulse | arp | strum
    bass_style: str      # root | pulse | walk | octave | drone
    drums: str           # key of DRUM_PATTERNS
    density: float       # melody notes per beat
    brightness: float    # 0..1: register and velocity of the melody
    energy: float        # 0..1: overall velocity
    swing: float = 0.0   # delay of off-beat 16ths, in 16ths
    sevenths: bool = False


PRESETS: tuple[StylePreset, ...] = (
    StylePreset("calm_ambient", "calm ambient synth pads, soft piano, peaceful exploration",
                72, 2, "lydian", (0, 4, 5, 3), 89, 38, 0, "sustain", "drone", "ambient",
                0.35, 0.45, 0.45),
    StylePreset("orchestral_combat", "driving orchestral percussion, urgent strings, battle",
                148, 9, "minor", (0, 5, 3, 4), 48, 42, 61, "pulse", "pulse", "orchestral",
                1.2, 0.7, 0.9),
    StylePreset("chiptune", "8-bit chiptune, retro video game, square wave arpeggios",
                140, 0, "major", (0, 5, 3, 4), 80, 38, 80, "arp", "octave", "chiptune",
                1.5, 0.85, 0.8),
    StylePreset("horror_drones", "dark horror drones, eerie dissonant atmosphere, dread",
                60, 1, "phrygian", (0, 1, 0, 6), 92, 42, 99, "sustain", "drone", "horror",
                0.15, 0.15, 0.5),
    StylePreset("jazz_noir", "smoky jazz noir, saxophone, walking bass, brushed drums",
                96, 5, "dorian", (1, 4, 0, 5), 4, 32, 66, "strum", "walk", "jazz",
                0.9, 0.5, 0.6, swing=0.33, sevenths=True),
    StylePreset("folk_acoustic", "warm folk acoustic guitar, fiddle, countryside",
                104, 7, "major", (0, 3, 4, 0), 25, 32, 110, "strum", "root", "folk",
                0.8, 0.6, 0.65),
    StylePreset("synthwave", "synthwave retro 80s synths, neon night drive",
                112, 4, "minor", (0, 5, 2, 6), 90, 38, 81, "pulse", "octave", "synthwave",
                0.8, 0.75, 0.8),
    StylePreset("epic_boss", "epic boss battle, choir, brass and heavy drums, huge",
                160, 2, "harmonic_minor", (0, 5, 6, 4), 52, 57, 61, "pulse", "pulse", "epic",
                1.0, 0.8, 1.0),
    StylePreset("victory_fanfare", "triumphant victory fanfare, brass, celebration",
                120, 10, "major", (0, 3, 4, 0), 61, 57, 56, "strum", "root", "fanfare",
                1.2, 0.9, 0.9),
    StylePreset("sad_solo", "sad solo cello, melancholy, loss, slow and tender",
                62, 2, "minor", (0, 5, 3, 4), 48, 42, 42, "sustain", "root", "none",
                0.5, 0.3, 0.45),
    StylePreset("tense_stealth", "tense stealth, sneaking, pizzicato, ticking suspense",
                92, 11, "minor", (0, 0, 5, 4), 49, 33, 45, "pulse", "pulse", "stealth",
                0.6, 0.4, 0.55),
    StylePreset("tavern_medieval", "medieval tavern, lute, flute, merry folk dance",
                126, 2, "dorian", (0, 6, 0, 4), 24, 32, 73, "strum", "root", "tavern",
                1.1, 0.7, 0.7),
    StylePreset("underwater_dream", "dreamy underwater, soft bells, floating, gentle",
                80, 5, "major", (0, 2, 3, 1), 94, 32, 11, "arp", "root", "none",
                0.5, 0.6, 0.4),
    StylePreset("heroic_adventure", "heroic adventure theme, soaring strings and horns",
                116, 0, "major", (0, 4, 5, 3), 48, 42, 60, "pulse", "root", "rock",
                0.9, 0.75, 0.85),
)
