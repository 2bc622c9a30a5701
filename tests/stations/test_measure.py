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


def test_energy_bands_hold_a_piece_to_its_level_by_order():
    from cantus.stations.measure import ENERGY_MEDIANS, energy_band

    for palette, (low, mid, high) in ENERGY_MEDIANS.items():
        low_band, mid_band, high_band = (energy_band(v, palette) for v in ("low", "mid", "high"))
        # a low piece may measure up to the mid band's top, a high one down to its bottom
        assert low_band == (0.0, (mid + high) / 2) and high_band == ((low + mid) / 2, 1.0)
        assert mid_band == (low, high)
        assert low_band[1] > mid > high_band[0]  # the levels' medians all pass


def test_a_piece_misses_its_energy_in_its_own_palette():
    import pytest

    from cantus.stations.measure import energy_band, energy_problem

    assert energy_problem(0.4, "high", "ambient") == ""  # above ambient's mid median
    missed = energy_problem(0.4, "high", "folk")  # under folk's mid
    assert f"below {energy_band('high', 'folk')[0]:.3f}" in missed
    assert "high band" in missed and "'folk'" in missed
    assert "above" in energy_problem(0.66, "low", "folk")
    low_chorale = energy_band("mid", "chorale")[0]
    assert energy_problem(0.2, "mid", "chorale").startswith(f"energy 0.200 below {low_chorale}")
    # a palette not measured: every piece's medians
    assert energy_band("high", "harp-flute") == energy_band("high", "")
    assert "below" in energy_problem(0.3, "high", "harp-flute")
    with pytest.raises(ValueError, match="energy: level 'loud'"):
        energy_problem(0.5, "loud", "folk")
