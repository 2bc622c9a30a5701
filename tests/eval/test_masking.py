"""The masking rate: melody notes with another pitched part at or above them, read from
arranged tracks or a MIDI file."""

from cantus.eval.masking import masked_notes, midi_masking, midi_tracks, track_masking
from cantus.music.midi_io import tracks_to_midi_bytes
from cantus.music.notes import Key, Meter, Mode, Note, Track

MELODY = [Note(0, 72, 480), Note(480, 60, 480), Note(960, 67, 480)]


def test_a_note_at_or_above_a_melody_note_it_overlaps_masks_it():
    chords = [Note(0, 64, 960), Note(960, 67, 480)]  # under 72; over 60; equal to 67
    assert masked_notes(MELODY, chords) == [MELODY[1], MELODY[2]]


def test_a_note_that_only_touches_the_melody_note_does_not_mask_it():
    assert masked_notes(MELODY, [Note(1440, 80, 480), Note(0, 79, 480)]) == [MELODY[0]]


def test_drums_and_the_melody_itself_do_not_count():
    tracks = [
        Track("melody", 0, 0, MELODY),
        Track("drums", 0, 9, [Note(0, 81, 1440)]),
        Track("bass", 32, 2, [Note(0, 40, 1440)]),
    ]
    masking = track_masking(tracks)
    assert (masking.melody_notes, masking.masked, masking.rate) == (3, 0, 0.0)


def test_the_rate_read_from_a_midi_file_matches_the_tracks():
    tracks = [
        Track("melody", 0, 0, MELODY),
        Track("chords", 0, 1, [Note(0, 64, 960), Note(960, 67, 480)]),
        Track("drums", 0, 9, [Note(0, 42, 120)]),
    ]
    data = tracks_to_midi_bytes(tracks, tempo_bpm=100, meter=Meter(4, 4), key=Key(0, Mode.MAJOR))
    assert [t.name for t in midi_tracks(data)] == ["melody", "chords", "drums"]
    masking = midi_masking(data)
    assert masking == track_masking(tracks)
    assert abs(masking.rate - 2 / 3) < 1e-9
