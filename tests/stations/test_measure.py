"""The energy a rendered piece measures as (#17): melody note density, the arrangement's
onsets and the parts' loudness."""

import io

import mido

from cantus.stations.measure import midi_energy


def _track(name: str, notes_per_bar: int, velocity: int, *, bars: int = 4, channel: int = 0):
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)))
    length = 4 * 480 // notes_per_bar
    pitch = 36 if channel == 9 else 60 if name == "melody" else 48
    for i in range(bars * notes_per_bar):
        note = pitch + i % 7
        track.append(mido.Message("note_on", channel=channel, note=note, velocity=velocity))
        track.append(mido.Message("note_off", channel=channel, note=note, time=length))
    return track


def _midi(*tracks: mido.MidiTrack) -> bytes:
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.extend(tracks)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def _solo(notes_per_bar: int, velocity: int) -> bytes:
    return _midi(_track("melody", notes_per_bar, velocity))


def test_denser_and_louder_pieces_measure_as_more_energy():
    calm, middle, busy = _solo(2, 48), _solo(4, 72), _solo(16, 96)
    energies = [midi_energy(m) for m in (calm, middle, busy)]
    assert energies == sorted(energies) and energies[0] < 0.1 and energies[2] > 0.6
    assert energies[0] > 0 and energies[2] <= 1.0
    # density and loudness each count: louder alone, or denser alone, is more
    assert midi_energy(_solo(2, 96)) > midi_energy(calm) < midi_energy(_solo(16, 48))


def test_the_arrangement_counts_drums_and_re_strikes_included():
    melody = _track("melody", 8, 90)
    sustained = _midi(melody, _track("chords", 1, 50))
    strummed = _midi(melody, _track("chords", 4, 50))
    with_drums = _midi(melody, _track("chords", 4, 50), _track("drums", 8, 80, channel=9))
    energies = [midi_energy(m) for m in (sustained, strummed, with_drums)]
    # softer chords struck on every beat add activity and do not make the piece "quieter"
    assert energies[0] < energies[1] < energies[2]
    assert energies[2] - energies[0] > 0.12


def test_a_piece_without_notes_measures_as_zero():
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack())
    out = io.BytesIO()
    midi.save(file=out)
    assert midi_energy(out.getvalue()) == 0.0
