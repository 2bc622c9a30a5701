"""Voicings and bass lines: registers, notes inside the bar, smooth voice leading."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.harmony.rules import ChordSpan
from cantus.harmony.voicing import (
    BASS_RANGE,
    CHORALE_VOICE_RANGES,
    VOICING_RANGE,
    bass_line,
    voice_chords,
)
from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.notes import Meter, Note
from cantus.music.styles import Energy, Style

FOUR = Meter(4, 4)


def whole_bar(symbol: str, meter: Meter = FOUR) -> list[ChordSpan]:
    return [ChordSpan(0, meter.bar_ticks, ChordSymbol.parse(symbol), "")]


def halves(first: str, second: str, meter: Meter = FOUR) -> list[ChordSpan]:
    half = meter.bar_ticks // 2
    return [
        ChordSpan(0, half, ChordSymbol.parse(first), ""),
        ChordSpan(half, meter.bar_ticks - half, ChordSymbol.parse(second), ""),
    ]


def voicings(progression: list[str], style: Style) -> list[tuple[int, ...]]:
    """The voicing of each chord of a one-chord-per-bar progression, in order."""
    result: list[tuple[int, ...]] = []
    previous = None
    for symbol in progression:
        notes = voice_chords(whole_bar(symbol), style=style, previous_voicing=previous)
        previous = tuple(sorted(n.pitch for n in notes))
        result.append(previous)
    return result


def test_folk_voicings_are_four_chord_tones_in_the_piano_register():
    for symbol in ("C", "Am", "G7", "F#m7b5", "Bbmaj7", "Esus4", "Ddim7", "C/E"):
        notes = voice_chords(whole_bar(symbol), style=Style.FOLK, previous_voicing=None)
        chord = ChordSymbol.parse(symbol)
        assert len(notes) == 4
        assert {n.pitch % 12 for n in notes} == set(chord.tones)
        assert all(VOICING_RANGE[0] <= n.pitch <= VOICING_RANGE[1] for n in notes)
        assert all(n.onset == 0 and n.duration == FOUR.bar_ticks for n in notes)


def test_voicings_keep_common_tones_and_move_by_step():
    progression = ["C", "Am", "F", "G7", "C", "Dm", "G", "C"]
    for before, after in itertools.pairwise(voicings(progression, Style.FOLK)):
        moves = [abs(a - b) for a, b in zip(before, after, strict=True)]
        assert max(moves) <= 3, (before, after)
        common = {p % 12 for p in before} & {p % 12 for p in after}
        assert len(set(before) & set(after)) >= min(1, len(common))


def test_c_to_a_minor_keeps_c_and_e():
    c_major, a_minor = voicings(["C", "Am"], Style.FOLK)
    assert {p for p in c_major if p % 12 in (0, 4)} <= set(a_minor)


def test_a_long_progression_does_not_drift_out_of_the_middle():
    progression = ["C", "G", "Am", "Em", "F", "C", "F", "G"] * 4
    means = [sum(v) / len(v) for v in voicings(progression, Style.CELTIC)]
    assert all(55 <= mean <= 69 for mean in means)


def test_chords_change_at_span_boundaries_within_the_bar():
    notes = voice_chords(halves("C", "G7"), style=Style.FOLK, previous_voicing=None)
    assert sorted({n.onset for n in notes}) == [0, 960]
    assert all(n.end <= FOUR.bar_ticks for n in notes)


def test_chorale_voicing_is_bass_tenor_alto_in_their_ranges():
    progression = ["C", "Am", "F", "G7", "C", "Dm", "G", "C", "E7", "Am", "D7/F#", "G"]
    for symbol, voicing in zip(progression, voicings(progression, Style.CHORALE), strict=True):
        chord = ChordSymbol.parse(symbol)
        assert len(voicing) == 3
        assert voicing[0] % 12 == chord.bass_pitch_class
        assert {p % 12 for p in voicing} <= chord.pitch_classes
        for pitch, (low, high) in zip(voicing, CHORALE_VOICE_RANGES, strict=True):
            assert low <= pitch <= high


def parallel_perfects(before, after) -> int:
    count = 0
    for low, high in itertools.combinations(range(3), 2):
        moved = before[low] != after[low] and before[high] != after[high]
        same = (before[high] - before[low]) % 12 == (after[high] - after[low]) % 12
        if moved and same and (after[high] - after[low]) % 12 in (0, 7):
            count += 1
    return count


def test_chorale_voicing_avoids_parallel_fifths_and_octaves():
    progression = ["C", "Dm", "G", "C", "F", "G", "Am", "F", "C", "G7", "C"]
    chorale = voicings(progression, Style.CHORALE)
    assert sum(parallel_perfects(a, b) for a, b in itertools.pairwise(chorale)) == 0


def test_previous_voicing_of_another_size_is_accepted():
    notes = voice_chords(whole_bar("F"), style=Style.CHORALE, previous_voicing=(55, 60, 64, 67))
    assert len(notes) == 3
    notes = voice_chords(whole_bar("F"), style=Style.FOLK, previous_voicing=(48, 55, 64))
    assert len(notes) == 4


# --- bass lines -------------------------------------------------------------------------------


def pitches(notes: list[Note]) -> list[int]:
    return [n.pitch for n in notes]


def test_low_energy_bass_is_one_root_per_chord():
    notes = bass_line(halves("C", "G"), FOUR, style=Style.FOLK, energy=Energy.LOW)
    assert [(n.onset, n.duration) for n in notes] == [(0, 960), (960, 960)]
    assert [p % 12 for p in pitches(notes)] == [0, 7]


def test_slash_chords_put_their_bass_note_in_the_bass():
    notes = bass_line(whole_bar("C/E"), FOUR, style=Style.FOLK, energy=Energy.LOW)
    assert [p % 12 for p in pitches(notes)] == [4]


def test_mid_energy_adds_the_fifth_on_the_middle_beat():
    notes = bass_line(whole_bar("C"), FOUR, style=Style.FOLK, energy=Energy.MID)
    assert [(n.onset, n.pitch % 12) for n in notes] == [(0, 0), (960, 7)]
    waltz = bass_line(whole_bar("F", Meter(3, 4)), Meter(3, 4), style=Style.FOLK, energy=Energy.MID)
    assert [(n.onset, n.pitch % 12) for n in waltz] == [(0, 5), (960, 0)]


def test_high_energy_walks_into_the_next_chord():
    notes = bass_line(halves("C", "F"), FOUR, style=Style.FOLK, energy=Energy.HIGH)
    assert [n.onset for n in notes] == [0, 480, 960, 1440]
    approach, target = notes[1].pitch, notes[2].pitch
    assert abs(approach - target) == 1  # a chromatic approach on the weak beat


def test_high_energy_jig_bass_is_long_short():
    jig = Meter(6, 8)
    notes = bass_line(halves("D", "A", jig), jig, style=Style.CELTIC, energy=Energy.HIGH)
    assert [(n.onset, n.duration) for n in notes] == [(0, 480), (480, 240), (720, 480), (1200, 240)]


def test_chorale_bass_holds_one_note_per_chord_at_any_energy():
    for energy in Energy:
        notes = bass_line(halves("C", "G7"), FOUR, style=Style.CHORALE, energy=energy)
        assert len(notes) == 2


def test_more_energy_means_more_bass_notes():
    counts = [
        len(bass_line(whole_bar("G"), FOUR, style=Style.FOLK, energy=energy))
        for energy in (Energy.LOW, Energy.MID, Energy.HIGH)
    ]
    assert counts == sorted(counts) and counts[0] < counts[-1]


_METERS = [
    Meter.parse(m)
    for m in ("2/4", "3/4", "4/4", "2/2", "3/8", "6/8", "9/8", "12/8", "5/4", "7/8", "6/4", "3/2")
]


@st.composite
def bar_of_spans(draw):
    meter = draw(st.sampled_from(_METERS))
    symbols = st.builds(
        ChordSymbol,
        st.integers(0, 11),
        st.sampled_from(list(ChordQuality)),
        st.none() | st.integers(0, 11),
    )
    cut = draw(st.sampled_from([0, 1, 2])) * meter.bar_ticks // 4
    if cut == 0:
        return meter, [ChordSpan(0, meter.bar_ticks, draw(symbols), "")]
    return meter, [
        ChordSpan(0, cut, draw(symbols), ""),
        ChordSpan(cut, meter.bar_ticks - cut, draw(symbols), ""),
    ]


@settings(max_examples=150, deadline=None)
@given(
    bar_of_spans(),
    st.sampled_from(list(Style)),
    st.sampled_from(list(Energy)),
    st.none() | st.lists(st.integers(36, 84), min_size=1, max_size=5).map(tuple),
)
def test_any_spans_give_notes_in_range_inside_the_bar(spans_in_meter, style, energy, previous):
    meter, spans = spans_in_meter
    voicing = voice_chords(spans, style=style, previous_voicing=previous)
    low, high = (40, 72) if style is Style.CHORALE else VOICING_RANGE
    assert voicing and all(low <= n.pitch <= high for n in voicing)
    assert all(n.end <= meter.bar_ticks for n in voicing)
    bass = bass_line(spans, meter, style=style, energy=energy)
    assert all(BASS_RANGE[0] <= n.pitch <= BASS_RANGE[1] for n in bass)
    assert bass[0].onset == 0 and bass[-1].end == meter.bar_ticks
    assert all(a.end == b.onset for a, b in itertools.pairwise(bass))


@pytest.mark.parametrize("style", list(Style))
def test_voicing_is_deterministic(style):
    assert voicings(["C", "F", "G7", "C"], style) == voicings(["C", "F", "G7", "C"], style)


def test_chorale_voicing_stays_under_the_tune_without_parallels():
    from cantus.eval.harmony import parallel_rate
    from cantus.music.notes import Bar

    tune = Bar(FOUR, (Note(0, 67, 960), Note(960, 69, 960)))
    spans = halves("C", "F")
    notes = voice_chords(spans, style=Style.CHORALE, previous_voicing=(48, 55, 64), melody=tune)
    first = sorted(n.pitch for n in notes if n.onset == 0)
    second = sorted(n.pitch for n in notes if n.onset == 960)
    assert first[-1] < 67 and second[-1] < 69
    assert parallel_rate([(*first, 67), (*second, 69)]) == (0, 1)


# --- under the melody ---------------------------------------------------------------------

melody_bars = st.lists(
    st.tuples(st.integers(55, 84), st.sampled_from([240, 480, 960])), min_size=1, max_size=8
)


def _bar_of(notes: list[tuple[int, int]], meter: Meter = FOUR):
    from cantus.music.notes import Bar

    out, onset = [], 0
    for pitch, duration in notes:
        if onset + duration > meter.bar_ticks:
            break
        out.append(Note(onset, pitch, duration))
        onset += duration
    return Bar(meter, tuple(out))


@settings(max_examples=150, deadline=None)
@given(
    melody_bars,
    st.sampled_from(["C", "Am", "G7", "F", "Dm7", "E", "Bb", "F#m7b5", "C/E", "Esus4"]),
    st.sampled_from(["C", "G", "Am", "D7", "Ebmaj7"]),
    st.sampled_from([Style.FOLK, Style.CELTIC]),
)
def test_folk_and_celtic_voicings_sit_under_the_melody(notes, first, second, style):
    """The voicing rule (issue #15): no chord note at or above a melody note it sounds
    with, for a tune from G3 up; every chord tone still there, four or three notes."""
    bar = _bar_of(notes)
    spans = halves(first, second)
    voicing = voice_chords(spans, style=style, previous_voicing=None, melody=bar)
    for chord in voicing:
        over = [m.pitch for m in bar.notes if m.onset < chord.end and m.end > chord.onset]
        assert not over or chord.pitch < min(over), (chord, bar.notes)
    for span in spans:
        pitches = [n.pitch for n in voicing if n.onset == span.onset]
        assert len(pitches) in (3, 4)
        assert all(43 <= p <= 72 for p in pitches)


def test_voicings_under_a_moving_tune_still_move_by_small_steps():
    from cantus.music.notes import Bar

    progression = ["C", "Am", "F", "G7", "C", "Dm", "G", "C"]
    tunes = [76, 72, 69, 71, 67, 65, 74, 72]
    previous, moves = None, []
    for symbol, top in zip(progression, tunes, strict=True):
        bar = Bar(FOUR, (Note(0, top, FOUR.bar_ticks),))
        notes = voice_chords(
            whole_bar(symbol), style=Style.FOLK, previous_voicing=previous, melody=bar
        )
        voicing = tuple(sorted(n.pitch for n in notes))
        assert voicing[-1] < top
        if previous is not None and len(previous) == len(voicing):
            moves.append(max(abs(a - b) for a, b in zip(previous, voicing, strict=True)))
        previous = voicing
    # A tune falling a fourth may push one voice by up to a fifth; most changes are steps.
    assert max(moves) <= 7 and sum(moves) / len(moves) <= 4


def test_the_bass_sits_in_a_bass_register():
    assert BASS_RANGE[1] <= 52 and BASS_RANGE[0] >= 28
