"""The symbolic music domain: notes, bars, keys, meters, MIDI, chords, arrangement."""
