"""The energy a rendered piece measures as (#17): melody note density and loudness."""

import io

import mido

from cantus.stations.measure import midi_energy


def _midi(notes_per_bar: int, velocity: int, bars: int = 4) -> bytes:
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)))
    length = 4 * 480 // notes_per_bar
    for i in range(bars * notes_per_bar):
        track.append(mido.Message("note_on", note=60 + i % 7, velocity=velocity, time=0))
        track.append(mido.Message("note_off", note=60 + i % 7, velocity=0, time=length))
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def test_denser_and_louder_pieces_measure_as_more_energy():
    calm, middle, busy = _midi(2, 64), _midi(4, 88), _midi(8, 108)
    energies = [midi_energy(m) for m in (calm, middle, busy)]
    assert energies == sorted(energies) and energies[0] < 0.2 and energies[2] > 0.8
    assert energies[0] > 0 and energies[2] <= 1.0
    # density and loudness each count: louder alone, or denser alone, is more
    assert midi_energy(_midi(2, 108)) > midi_energy(calm) < midi_energy(_midi(8, 64))


def test_a_piece_without_notes_measures_as_zero():
    midi = mido.MidiFile()
    midi.tracks.append(mido.MidiTrack())
    out = io.BytesIO()
    midi.save(file=out)
    assert midi_energy(out.getvalue()) == 0.0
