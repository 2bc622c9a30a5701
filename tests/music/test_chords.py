"""Chord symbols and Roman numerals: parse/print round trips, pitch classes, secondary dominants."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cantus.music.chords import ChordQuality, ChordSymbol, chord_from_roman, roman_numeral
from cantus.music.notes import Key, Mode, MusicError


@given(st.integers(0, 11), st.sampled_from(list(ChordQuality)), st.none() | st.integers(0, 11))
def test_symbol_print_parse_round_trip(root, quality, bass):
    symbol = ChordSymbol(root, quality, bass)
    parsed = ChordSymbol.parse(str(symbol))
    assert parsed.root == root and parsed.quality == quality
    assert parsed.pitch_classes == symbol.pitch_classes


@pytest.mark.parametrize(
    ("text", "classes"),
    [
        ("C", {0, 4, 7}),
        ("Am7/G", {9, 0, 4, 7}),
        ("F#m7b5", {6, 9, 0, 4}),
        ("Bbmaj7", {10, 2, 5, 9}),
        ("Gsus4", {7, 0, 2}),
        ("Ebdim7", {3, 6, 9, 0}),
    ],
)
def test_pitch_classes(text, classes):
    assert ChordSymbol.parse(text).pitch_classes == frozenset(classes)
    assert str(ChordSymbol.parse(text)) == text


@pytest.mark.parametrize("text", ["H", "Cmaj9#11", "", "C/H", "c"])
def test_unreadable_symbols_name_the_text(text):
    with pytest.raises(MusicError, match="chord symbol"):
        ChordSymbol.parse(text)


@pytest.mark.parametrize(
    ("symbol", "key", "roman"),
    [
        ("C", Key(0), "I"),
        ("Dm", Key(0), "ii"),
        ("G7", Key(0), "V7"),
        ("Bdim", Key(0), "viio"),
        ("D7", Key(0), "V7/V"),
        ("A7", Key(0), "V7/ii"),
        ("E", Key(9, Mode.MINOR), "V"),
        ("Am", Key(9, Mode.MINOR), "i"),
        ("Bb", Key(0), "bVII"),
    ],
)
def test_roman_numerals_round_trip(symbol, key, roman):
    chord = ChordSymbol.parse(symbol)
    assert roman_numeral(chord, key) == roman
    assert chord_from_roman(roman, key) == chord


def test_bad_roman_numeral():
    with pytest.raises(MusicError, match="Roman numeral"):
        chord_from_roman("IX", Key(0))
