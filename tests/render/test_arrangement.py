"""Arrangement: four named tracks with absolute onsets, drums on channel 9."""

from cantus.harmony.rules import harmonize_bar
from cantus.harmony.voicing import bass_line, voice_chords
from cantus.music.notes import Bar, Key, Meter, Note
from cantus.music.styles import Energy, Style
from cantus.render.arrangement import ArrangedBar, arrange_tracks, drum_pattern


def arranged(meter: Meter, pitch: int) -> ArrangedBar:
    melody = Bar(meter, (Note(0, pitch, meter.bar_ticks),))
    spans = harmonize_bar(melody, Key(0), previous=None, style=Style.FOLK)
    return ArrangedBar(
        melody,
        spans,
        voice_chords(spans, style=Style.FOLK, previous_voicing=None),
        bass_line(spans, meter, style=Style.FOLK, energy=Energy.MID),
        [(0, "la")],
    )


def test_four_named_tracks_with_absolute_onsets():
    meter = Meter(3, 4)
    tracks = arrange_tracks(
        [arranged(meter, 60), arranged(meter, 67)], style=Style.CELTIC, energy=Energy.HIGH
    )
    assert [t.name for t in tracks] == ["melody", "chords", "bass", "drums"]
    melody = tracks[0]
    assert [n.onset for n in melody.notes] == [0, meter.bar_ticks]
    assert melody.lyrics == [(0, "la"), (meter.bar_ticks, "la")]
    assert tracks[3].channel == 9 and tracks[3].notes


def test_chorales_have_no_drums_and_segments_know_their_place():
    assert (
        drum_pattern(
            Meter(4, 4), style=Style.CHORALE, energy=Energy.HIGH, bar_index=0, is_final=False
        )
        == []
    )
    middle = arrange_tracks(
        [arranged(Meter(4, 4), 60)],
        style=Style.FOLK,
        energy=Energy.LOW,
        first_index=4,
        total_bars=16,
    )
    assert 49 not in {n.pitch for n in middle[3].notes}  # no crash cymbal mid-piece
