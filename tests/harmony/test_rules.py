"""The rule-based harmoniser: chords that fit, cadences, and no crash on odd bars."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.harmony.rules import chord_segments, harmonize_bar, harmonize_bars
from cantus.harmony.voicing import BASS_RANGE, VOICING_RANGE, bass_line, voice_chords
from cantus.music.chords import ChordSymbol, roman_numeral
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


# --- chord rhythm -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meter", "segments"),
    [
        (Meter(4, 4), [(0, 960), (960, 960)]),
        (Meter(2, 2), [(0, 960), (960, 960)]),
        (Meter(6, 8), [(0, 720), (720, 720)]),
        (Meter(12, 8), [(0, 1440), (1440, 1440)]),
        (Meter(6, 4), [(0, 1440), (1440, 1440)]),
        (Meter(3, 4), [(0, 1440)]),
        (Meter(3, 8), [(0, 720)]),
        (Meter(9, 8), [(0, 2160)]),
        (Meter(2, 4), [(0, 960)]),
        (Meter(3, 2), [(0, 2880)]),
        (Meter(5, 4), [(0, 1440), (1440, 960)]),
        (Meter(7, 8), [(0, 960), (960, 720)]),
    ],
)
def test_chord_segments_per_meter(meter, segments):
    assert chord_segments(meter) == segments


def test_seven_eight_reads_three_two_two_from_the_melody():
    meter = Meter(7, 8)
    three_two_two = Bar(meter, (Note(0, 60, 720), Note(720, 64, 480), Note(1200, 67, 480)))
    assert chord_segments(meter, three_two_two) == [(0, 720), (720, 960)]
    spans = harmonize_bar(three_two_two, C_MAJOR, previous=None, style=Style.FOLK)
    assert covers(spans, meter)


# --- chord choice -----------------------------------------------------------------------------


def test_a_c_major_scale_melody_gets_primary_chords():
    scale = [
        bar(FOUR, 60, 62, 64, 65),
        bar(FOUR, 67, 69, 71, 72),
        bar(FOUR, 72, 71, 69, 67),
        bar(FOUR, 65, 64, 62, 60),
    ]
    romans = [
        span.roman for spans in harmonize_bars(scale, C_MAJOR, style=Style.FOLK) for span in spans
    ]
    assert set(romans) <= {"I", "IV", "V", "V7"}
    assert romans[0] == "I" and romans[-1] == "I"


def test_final_bar_splits_into_an_authentic_cadence():
    cadence = Bar(FOUR, (Note(0, 74, 480), Note(480, 71, 480), Note(960, 72, 960)))  # D B | C
    spans = harmonize_bar(
        cadence,
        C_MAJOR,
        previous=ChordSymbol.parse("F"),
        style=Style.FOLK,
        is_final=True,
    )
    assert [span.roman for span in spans] in (["V", "I"], ["V7", "I"])


def test_minor_melody_ends_on_the_minor_tonic():
    melody = [bar(FOUR, 69, 72, 76, 72), bar(FOUR, 74, 72, 71, 68), bar(FOUR, 69, 69, 69, 69)]
    spans = harmonize_bars(melody, Key(9, Mode.MINOR), style=Style.FOLK)
    assert spans[-1][-1].roman == "i" and str(spans[-1][-1].symbol) == "Am"


@pytest.mark.parametrize("style", list(Style))
def test_empty_and_rest_bars_prolong_the_previous_chord(style):
    rests = Bar(FOUR)
    previous = ChordSymbol.parse("F")
    held = harmonize_bar(rests, C_MAJOR, previous=previous, style=style)
    assert [(s.onset, s.duration, s.symbol, s.roman) for s in held] == [(0, 1920, previous, "IV")]
    fresh = harmonize_bar(rests, C_MAJOR, previous=None, style=style)
    assert [str(s.symbol) for s in fresh] == ["C"]
    final = harmonize_bar(rests, C_MAJOR, previous=previous, style=style, is_final=True)
    assert [str(s.symbol) for s in final] == ["C"]


def test_half_a_bar_of_rest_keeps_one_chord():
    melody = Bar(FOUR, (Note(0, 65, 480), Note(480, 69, 480)))
    spans = harmonize_bar(melody, C_MAJOR, previous=None, style=Style.CHORALE)
    assert [(s.onset, s.duration, str(s.symbol)) for s in spans] == [(0, 1920, "F")]


def test_a_clear_change_of_harmony_splits_the_bar():
    melody = bar(FOUR, 60, 64, 65, 69)  # C E | F A
    spans = harmonize_bar(melody, C_MAJOR, previous=None, style=Style.FOLK)
    assert [str(s.symbol) for s in spans] == ["C", "F"]
    assert [(s.onset, s.duration) for s in spans] == [(0, 960), (960, 960)]


def test_chromatic_melodies_still_get_diatonic_chords():
    melody = bar(FOUR, 61, 63, 66, 68, 70, 73, 75, 78)
    spans = harmonize_bar(melody, C_MAJOR, previous=None, style=Style.FOLK)
    assert all("/" not in s.roman and s.roman[0] not in "b#" for s in spans)


def test_next_bar_lookahead_prefers_a_chord_leading_into_it():
    # An E-G bar is C or Em by itself; before a bar of F it should be a chord that moves well.
    melody = bar(FOUR, 64, 67, 64, 67)
    spans = harmonize_bar(
        melody, C_MAJOR, previous=None, style=Style.FOLK, next_bar=bar(FOUR, 65, 69, 72, 69)
    )
    assert covers(spans, FOUR) and str(spans[0].symbol) == "C"


def test_harmonising_is_deterministic():
    melody = bar(FOUR, 62, 65, 69, 72, 71, 67, 65, 62)
    runs = {
        tuple(harmonize_bar(melody, C_MAJOR, previous=ChordSymbol.parse("Am"), style=Style.CELTIC))
        for _ in range(2)
    }
    assert len(runs) == 1


_SPAN_METERS = [
    Meter.parse(m)
    for m in ("2/4", "3/4", "4/4", "2/2", "3/8", "6/8", "9/8", "12/8", "5/4", "7/8", "6/4", "3/2")
]


@st.composite
def melody_bars(draw):
    meter = draw(st.sampled_from(_SPAN_METERS))
    notes, position = [], 0
    while position < meter.bar_ticks:
        length = draw(st.sampled_from([120, 240, 360, 480, 720, 960]))
        if position + length > meter.bar_ticks:
            break
        if draw(st.booleans()) or not notes:
            notes.append(Note(position, draw(st.integers(48, 84)), length))
        position += length
    return Bar(meter, tuple(notes))


@settings(max_examples=150, deadline=None)
@given(
    melody_bars(),
    st.builds(Key, st.integers(0, 11), st.sampled_from(list(Mode))),
    st.sampled_from(list(Style)),
    st.none() | st.sampled_from(["C", "Am", "G7", "D/F#", "Bbmaj7", "F#dim"]),
    st.booleans(),
)
def test_any_bar_gets_spans_that_cover_it(melody, key, style, previous, is_final):
    previous_chord = ChordSymbol.parse(previous) if previous else None
    spans = harmonize_bar(melody, key, previous=previous_chord, style=style, is_final=is_final)
    assert covers(spans, melody.meter) and 1 <= len(spans) <= 2
    assert all(span.roman == roman_numeral(span.symbol, key) for span in spans)
    assert all(a.symbol != b.symbol for a, b in itertools.pairwise(spans))
