"""Model windows: fixed size, left-padded, history chords as the previous-chord input."""

import numpy as np

from cantus.harmony.context import (
    CONTEXT_BEATS,
    PAD,
    START,
    UNKNOWN,
    HarmonizedBar,
    beats_to_spans,
    build_window,
    hold_beats,
)
from cantus.harmony.vocabulary import NO_CHORD, chord_to_class
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Bar, Key, Meter, Note
from cantus.music.styles import Energy, Style

C = Key(0)
FOUR = Meter(4, 4)


def bar(pitch: int, meter: Meter = FOUR) -> Bar:
    return Bar(meter, (Note(0, pitch, meter.bar_ticks),))


def window(history, current, style=Style.CHORALE, complete=True):
    return build_window(
        history,
        current,
        next_bar=bar(67),
        key=C,
        style=style,
        energy=Energy.MID,
        is_final=False,
        history_is_complete=complete,
    )


def test_first_bar_window():
    w = window([], bar(60))
    assert w.features.shape == (CONTEXT_BEATS, 70)
    assert w.decode_from == CONTEXT_BEATS - 4
    assert (w.previous[: w.decode_from] == PAD).all()
    assert w.previous[w.decode_from] == START
    assert not w.features[: w.decode_from].any()
    assert not w.hold.any()


def test_history_chords_are_the_previous_input():
    c_major, g_major = (chord_to_class(ChordSymbol.parse(s), C) for s in ("C", "G"))
    history = [
        HarmonizedBar(bar(60), ((c_major, 0),) * 4),
        HarmonizedBar(bar(62), ((g_major, 0), (g_major, 0), (NO_CHORD, 0), (c_major, 0))),
    ]
    w = window(history, bar(64))
    start = CONTEXT_BEATS - 12
    assert w.decode_from == CONTEXT_BEATS - 4
    assert list(w.previous[start:]) == [
        START, c_major, c_major, c_major, c_major, g_major, g_major, UNKNOWN, c_major,
        PAD, PAD, PAD,
    ]  # fmt: skip
    assert w.features[start, 0] == 1.0  # history bar 0 holds C
    assert w.features[start, 36 + 2] == 1.0  # ... and looks ahead to bar 1's D


def test_long_history_is_cropped_to_the_window():
    c_major = chord_to_class(ChordSymbol.parse("C"), C)
    history = [HarmonizedBar(bar(60), ((c_major + i % 3, 0),) * 4) for i in range(14)]
    w = window(history, bar(64), complete=False)
    assert w.decode_from == CONTEXT_BEATS - 4
    assert (w.previous != PAD)[: w.decode_from].all()
    assert w.previous[0] == c_major + 2 % 3  # the chord before the first kept beat


def test_folk_holds_the_chord_between_its_changes():
    # 4/4 may change at the half bar (whether it does is the model's choice).
    assert list(hold_beats(bar(60), Style.FOLK)) == [False, True, False, True]
    assert list(hold_beats(bar(60, Meter(3, 4)), Style.FOLK)) == [False, True, True]
    assert not hold_beats(bar(60), Style.CHORALE).any()
    moving = Bar(FOUR, (Note(0, 60, 960), Note(960, 65, 960)))
    assert list(hold_beats(moving, Style.FOLK)) == [False, True, False, True]
    five = Meter(5, 4)
    assert list(hold_beats(bar(60, five), Style.CELTIC)) == [False, True, True, False, True]
    w = window([], moving, style=Style.FOLK)
    assert list(w.hold[-4:]) == [False, True, False, True]


def test_beats_merge_into_spans_with_roman_numerals():
    g7 = chord_to_class(ChordSymbol.parse("G7"), C)
    c = chord_to_class(ChordSymbol.parse("C"), C)
    spans = beats_to_spans(bar(60), [(g7, 1), (g7, 1), (c, 0), (c, 0)], C)
    assert [(s.onset, s.duration, str(s.symbol), s.roman) for s in spans] == [
        (0, 960, "G7/B", "V65"),
        (960, 960, "C", "I"),
    ]
    assert np.isclose(sum(s.duration for s in spans), FOUR.bar_ticks)
