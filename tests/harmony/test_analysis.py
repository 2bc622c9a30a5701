"""The derived-label analysis: chords for a melody from its own notes, whole tune in view."""

import pytest

from cantus.harmony import rules
from cantus.harmony.analysis import analyse_chords
from cantus.harmony.features import beat_spans
from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Style

C_MAJOR = Key(0, Mode.MAJOR)
FOUR = Meter(4, 4)


def bar_of(*pitches: int, meter: Meter = FOUR) -> Bar:
    length = meter.bar_ticks // len(pitches)
    return Bar(meter, tuple(Note(i * length, p, length) for i, p in enumerate(pitches)))


def test_arpeggiated_progression_is_read_back():
    bars = [
        bar_of(60, 64, 67, 72),  # C E G C
        bar_of(65, 69, 72, 77),  # F A C F
        bar_of(67, 71, 74, 79),  # G B D G
        bar_of(72, 67, 64, 60),  # C G E C
    ]
    chords = analyse_chords(bars, C_MAJOR, Style.FOLK)
    assert [str(bar[0]) for bar in chords] == ["C", "F", "G", "C"]
    assert all(len(set(bar)) == 1 for bar in chords)  # one chord a bar: nothing asks for more


def test_half_bars_split_only_when_the_melody_asks():
    split = bar_of(60, 64, 67, 64, 67, 71, 74, 71, meter=FOUR)  # C-E-G-E then G-B-D-B
    chords = analyse_chords([split, bar_of(72, 67, 64, 60)], C_MAJOR, Style.FOLK)
    assert [str(c) for c in chords[0]] == ["C", "C", "G", "G"]


@pytest.mark.parametrize("style", [Style.FOLK, Style.CELTIC])
@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(6, 8), Meter(3, 4), Meter(7, 8)])
def test_one_diatonic_chord_per_beat_changing_only_where_chords_may(style, meter):
    key = Key(7, Mode.MINOR)
    pitches = [67, 70, 74, 72, 69, 66, 67, 62, 63, 65, 67, 74]
    bars = [bar_of(*pitches[i : i + 3], meter=meter) for i in range(0, len(pitches), 3)]
    bars.append(Bar(meter, ()))  # a bar of rest holds what came before
    chords = analyse_chords(bars, key, style)
    allowed = {c.symbol for c in rules._candidates(key, style)}
    assert analyse_chords(bars, key, style) == chords  # deterministic
    for bar, bar_chords in zip(bars, chords, strict=True):
        spans = beat_spans(bar.meter)
        assert len(bar_chords) == len(spans)
        assert set(bar_chords) <= allowed
        starts = {onset for onset, _ in rules.chord_segments(bar.meter, bar)}
        for (onset, _), before, after in zip(
            spans[1:], bar_chords[:-1], bar_chords[1:], strict=True
        ):
            assert before == after or onset in starts
    assert chords[-1][-1] == ChordSymbol(7, rules._candidates(key, style)[0].symbol.quality)


def test_silent_tune_is_tonic():
    tonic = ChordSymbol(0, ChordQuality.MAJOR)
    assert analyse_chords([Bar(FOUR, ())] * 2, C_MAJOR, Style.FOLK) == [[tonic] * 4] * 2
    assert analyse_chords([], C_MAJOR, Style.FOLK) == []
