"""The default backend: a procedural arranger rendered with a General MIDI SoundFont."""
