"""Write the example MIDI motifs in middleware/scorewright/state_maps/motifs/ (run once; committed)."""

from pathlib import Path

import mido

OUT = Path(__file__).resolve().parents[1] / "middleware" / "scorewright" / "state_maps" / "motifs"
MOTIFS = {
    # name: [(pitch, beats), ...] written in C; 0 = rest
    "fanfare.mid": [(60, 0.5), (64, 0.5), (67, 0.5), (72, 1.5), (67, 0.5), (72, 2.0), (0, 2.0)],
    "cave.mid": [(48, 2.0), (51, 1.0), (50, 1.0), (48, 3.0), (0, 1.0)],
}

OUT.mkdir(parents=True, exist_ok=True)
for name, notes in MOTIFS.items():
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    rest = 0
    for pitch, beats in notes:
        ticks = int(beats * 480)
        if pitch == 0:
            rest += ticks
            continue
        track.append(mido.Message("note_on", note=pitch, velocity=96, time=rest))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=ticks))
        rest = 0
    track.append(mido.MetaMessage("end_of_track", time=rest))
    mid.save(OUT / name)
    print(f"wrote {OUT / name}")
