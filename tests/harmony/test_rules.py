"""The rule-based harmoniser: chords that fit, cadences, and no crash on odd bars."""

import itertools

import pytest

from cantus.harmony.rules import harmonize_bar
from cantus.harmony.voicing import BASS_RANGE, VOICING_RANGE, bass_line, voice_chords
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style

C_MAJOR, FOUR = Key(0), Meter(4, 4)


def bar(meter: Meter, *pitches: int) -> Bar:
    step = meter.bar_ticks // max(1, len(pitches))
    return Bar(meter, tuple(Note(i * step, p, step) for i, p in enumerate(pitches)))


def covers(spans, meter: Meter) -> bool:
    position = 0
    for span in spans:
        if span.onset != position:
            return False
        position += span.duration
    return position == meter.bar_ticks


def test_triad_melodies_get_their_triads():
    for pitches, chord in (
        ((60, 64, 67, 72), "C"),
        ((65, 69, 72, 69), "F"),
        ((67, 71, 74, 71), "G"),
    ):
        spans = harmonize_bar(bar(FOUR, *pitches), C_MAJOR, previous=None, style=Style.FOLK)
        assert [str(s.symbol) for s in spans] == [chord]


def test_final_bar_cadences_on_the_tonic():
    spans = harmonize_bar(
        bar(FOUR, 62, 59, 60, 60),
        C_MAJOR,
        previous=ChordSymbol.parse("G7"),
        style=Style.FOLK,
        is_final=True,
    )
    assert str(spans[-1].symbol) == "C" and spans[-1].roman == "I"


def test_minor_key_uses_the_harmonic_minor_dominant():
    spans = harmonize_bar(
        bar(FOUR, 68, 71, 64, 71), Key(9, Mode.MINOR), previous=None, style=Style.FOLK
    )
    assert str(spans[0].symbol) in ("E", "E7")


@pytest.mark.parametrize(
    ("melody", "meter"),
    [
        (Bar(FOUR), FOUR),  # empty bar
        (bar(FOUR, 61, 63, 66, 68, 70, 73, 75, 78), FOUR),  # chromatic
        (bar(Meter(5, 4), 60, 62, 64, 65, 67), Meter(5, 4)),
        (bar(Meter(7, 8), 60, 61, 62, 63, 64, 65, 66), Meter(7, 8)),
        (bar(Meter(6, 8), 67, 71, 74), Meter(6, 8)),
    ],
)
def test_odd_bars_get_spans_covering_the_bar(melody, meter):
    spans = harmonize_bar(melody, C_MAJOR, previous=None, style=Style.FOLK)
    assert covers(spans, meter)
    voicing = voice_chords(spans, style=Style.FOLK, previous_voicing=None)
    assert all(VOICING_RANGE[0] <= n.pitch <= VOICING_RANGE[1] for n in voicing)
    assert all(n.end <= meter.bar_ticks for n in voicing)
    for energy in Energy:
        bass = bass_line(spans, meter, style=Style.FOLK, energy=energy)
        assert all(BASS_RANGE[0] <= n.pitch <= BASS_RANGE[1] for n in bass)
        assert all(n.end <= meter.bar_ticks for n in bass)
        assert all(a.end <= b.onset for a, b in itertools.pairwise(bass))


def test_voicing_moves_smoothly():
    spans_c = harmonize_bar(bar(FOUR, 60, 64, 67, 72), C_MAJOR, previous=None, style=Style.FOLK)
    spans_f = harmonize_bar(bar(FOUR, 65, 69, 72, 69), C_MAJOR, previous=None, style=Style.FOLK)
    first = voice_chords(spans_c, style=Style.FOLK, previous_voicing=None)
    second = voice_chords(
        spans_f, style=Style.FOLK, previous_voicing=tuple(sorted(n.pitch for n in first))
    )
    moves = [
        abs(a - b)
        for a, b in zip(
            sorted(n.pitch for n in first), sorted(n.pitch for n in second), strict=True
        )
    ]
    assert max(moves) <= 2  # C -> F keeps the common tone and steps the others
