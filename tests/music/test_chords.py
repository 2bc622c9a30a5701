"""Chord symbols and Roman numerals: parse/print round trips, pitch classes, secondary dominants."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cantus.music.chords import (
    ChordQuality,
    ChordSymbol,
    chord_from_roman,
    diatonic_triads,
    roman_numeral,
)
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


# --- exact round trips, every quality, aliases ----------------------------------------------

qualities = st.sampled_from(list(ChordQuality))
pitch_classes = st.integers(0, 11)
keys = st.builds(Key, pitch_classes, st.sampled_from(list(Mode)))


@given(pitch_classes, qualities, st.none() | pitch_classes)
def test_symbol_round_trip_is_exact(root, quality, bass):
    symbol = ChordSymbol(root, quality, bass)
    assert ChordSymbol.parse(str(symbol)) == symbol


@pytest.mark.parametrize(
    "text",
    [
        "C",
        "Cm",
        "Cdim",
        "Caug",
        "C7",
        "Cmaj7",
        "Cm7",
        "Cm7b5",
        "Cdim7",
        "Csus2",
        "Csus4",
        "C7sus4",
        "C6",
        "Cm6",
        "F#m7/C#",
        "Bb/D",
    ],
)
def test_canonical_spellings_print_as_written(text):
    assert str(ChordSymbol.parse(text)) == text


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("CM7", "Cmaj7"),
        ("CΔ", "Cmaj7"),
        ("C-7", "Cm7"),
        ("Cmin", "Cm"),
        ("Cø", "Cm7b5"),
        ("Cm7-5", "Cm7b5"),
        ("C°7", "Cdim7"),
        ("Co", "Cdim"),
        ("C+", "Caug"),
        ("Csus", "Csus4"),
        ("F♯m", "F#m"),
        ("D♭maj7", "C#maj7"),
        (" G7 ", "G7"),
        ("C/C", "C"),
    ],
)
def test_aliases_parse_to_the_canonical_symbol(alias, canonical):
    assert str(ChordSymbol.parse(alias)) == canonical


_NOTE_NAMES = [letter + accidental for letter in "ABCDEFG" for accidental in ("", "#", "b")]
_SUFFIXES = [
    "",
    "m",
    "min",
    "-",
    "dim",
    "o",
    "aug",
    "+",
    "7",
    "maj7",
    "M7",
    "m7",
    "-7",
    "m7b5",
    "ø",
    "dim7",
    "sus2",
    "sus4",
    "sus",
    "7sus4",
    "6",
    "m6",
]


@given(
    st.sampled_from(_NOTE_NAMES),
    st.sampled_from(_SUFFIXES),
    st.none() | st.sampled_from(_NOTE_NAMES),
)
def test_any_written_symbol_prints_canonically_and_reparses(root, suffix, bass):
    text = root + suffix + (f"/{bass}" if bass else "")
    symbol = ChordSymbol.parse(text)
    assert ChordSymbol.parse(str(symbol)) == symbol
    assert symbol.root in symbol.pitch_classes


@given(st.text(max_size=12))
def test_parse_raises_only_music_errors(text):
    try:
        symbol = ChordSymbol.parse(text)
    except MusicError as error:
        assert repr(text.strip()) in str(error) or repr(text) in str(error)
    else:
        assert ChordSymbol.parse(str(symbol)) == symbol


def test_pitch_classes_include_the_slash_bass_and_tones_are_stacked():
    symbol = ChordSymbol.parse("C/D")
    assert symbol.pitch_classes == frozenset({0, 2, 4, 7})
    assert symbol.tones == (0, 4, 7) and symbol.bass_pitch_class == 2
    assert ChordSymbol.parse("G7").tones == (7, 11, 2, 5)


def test_out_of_range_values_are_music_errors():
    with pytest.raises(MusicError, match="root"):
        ChordSymbol(12, ChordQuality.MAJOR)
    with pytest.raises(MusicError, match="bass"):
        ChordSymbol(0, ChordQuality.MAJOR, -1)


# --- Roman numerals -------------------------------------------------------------------------

C_MAJOR, A_MINOR = Key(0), Key(9, Mode.MINOR)


@pytest.mark.parametrize(
    ("symbol", "key", "roman"),
    [
        ("Em", C_MAJOR, "iii"),
        ("F", C_MAJOR, "IV"),
        ("Am", C_MAJOR, "vi"),
        ("Cmaj7", C_MAJOR, "Imaj7"),
        ("Dm7", C_MAJOR, "ii7"),
        ("Bm7b5", C_MAJOR, "viiø7"),
        ("Bdim7", C_MAJOR, "viio7"),
        ("Fm", C_MAJOR, "iv"),
        ("Ab", C_MAJOR, "bVI"),
        ("Eb", C_MAJOR, "bIII"),
        ("Bdim", A_MINOR, "iio"),
        ("Bm7b5", A_MINOR, "iiø7"),
        ("C", A_MINOR, "III"),
        ("Dm", A_MINOR, "iv"),
        ("Em", A_MINOR, "v"),
        ("F", A_MINOR, "VI"),
        ("G", A_MINOR, "VII"),
        ("G#dim", A_MINOR, "viio"),
        ("G#dim7", A_MINOR, "viio7"),
        ("E7", A_MINOR, "V7"),
        ("Bb", A_MINOR, "bII"),
        ("Gsus4", C_MAJOR, "Vsus4"),
        ("G7sus4", C_MAJOR, "V7sus4"),
        ("F6", C_MAJOR, "IVadd6"),
        ("Dm6", C_MAJOR, "iiadd6"),
        ("Caug", C_MAJOR, "I+"),
    ],
)
def test_more_roman_numerals_round_trip(symbol, key, roman):
    chord = ChordSymbol.parse(symbol)
    assert roman_numeral(chord, key) == roman
    assert chord_from_roman(roman, key) == chord


@pytest.mark.parametrize(
    ("symbol", "key", "roman"),
    [
        ("D", C_MAJOR, "V/V"),
        ("E", C_MAJOR, "V/vi"),
        ("E7", C_MAJOR, "V7/vi"),
        ("A", C_MAJOR, "V/ii"),
        ("C7", C_MAJOR, "V7/IV"),
        ("B7", C_MAJOR, "V7/iii"),
        ("F#dim7", C_MAJOR, "viio7/V"),
        ("C#dim7", C_MAJOR, "viio7/ii"),
        ("F#m7b5", C_MAJOR, "viiø7/V"),
        ("B7", A_MINOR, "V7/V"),
        ("A7", A_MINOR, "V7/iv"),
        ("C7", A_MINOR, "V7/VI"),
        ("D7/F#", C_MAJOR, "V65/V"),
        ("A7/G", C_MAJOR, "V42/ii"),
    ],
)
def test_secondary_functions_round_trip(symbol, key, roman):
    chord = ChordSymbol.parse(symbol)
    assert roman_numeral(chord, key) == roman
    assert chord_from_roman(roman, key) == chord


@pytest.mark.parametrize(
    ("symbol", "roman"),
    [
        ("C/E", "I6"),
        ("C/G", "I64"),
        ("G/B", "V6"),
        ("G7/B", "V65"),
        ("G7/D", "V43"),
        ("G7/F", "V42"),
        ("Bdim/D", "viio6"),
        ("Fmaj7/A", "IVmaj65"),
    ],
)
def test_inversion_figures(symbol, roman):
    chord = ChordSymbol.parse(symbol)
    assert roman_numeral(chord, C_MAJOR) == roman
    assert chord_from_roman(roman, C_MAJOR) == chord


def test_a_bass_outside_the_chord_is_left_out_of_the_numeral():
    assert roman_numeral(ChordSymbol.parse("C/D"), C_MAJOR) == "I"


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [("vii°7", "viio7"), ("IM7", "Imaj7"), ("viiø", "viiø7"), ("V2", "V42"), (" V/V ", "V/V")],
)
def test_roman_spelling_variants(variant, canonical):
    assert chord_from_roman(variant, C_MAJOR) == chord_from_roman(canonical, C_MAJOR)


@pytest.mark.parametrize("text", ["", "X", "Vø7", "iimaj7", "I+7", "isus4", "V/viio", "V/", "vv"])
def test_unreadable_roman_numerals_name_the_text(text):
    with pytest.raises(MusicError, match="Roman numeral"):
        chord_from_roman(text, C_MAJOR)


@given(pitch_classes, qualities, keys)
def test_every_chord_over_its_root_round_trips_through_its_numeral(root, quality, key):
    chord = ChordSymbol(root, quality)
    assert chord_from_roman(roman_numeral(chord, key), key) == chord


@given(pitch_classes, qualities, keys, st.integers(0, 3))
def test_inversions_round_trip_through_their_figures(root, quality, key, inversion):
    chord = ChordSymbol(root, quality)
    if not (quality.is_triad or quality.is_seventh) or inversion >= len(chord.tones):
        return
    inverted = ChordSymbol(root, quality, chord.tones[inversion])
    assert chord_from_roman(roman_numeral(inverted, key), key) == inverted


@given(keys)
def test_diatonic_triads_and_sevenths_get_plain_numerals(key):
    for triad in diatonic_triads(key):
        numeral = roman_numeral(triad, key)
        assert "/" not in numeral and not numeral.startswith(("b", "#"))
        assert chord_from_roman(numeral, key) == triad
    dominant_seventh = ChordSymbol((key.tonic + 7) % 12, ChordQuality.DOMINANT_7)
    assert roman_numeral(dominant_seventh, key) == "V7"


@given(keys, st.sampled_from(["ii", "iii", "IV", "V", "vi", "III", "iv", "VI", "VII"]))
def test_secondary_dominants_of_every_diatonic_chord_round_trip(key, target):
    try:
        chord_from_roman(target, key)
    except MusicError:
        return
    for function in ("V", "V7"):
        roman = f"{function}/{target}"
        chord = chord_from_roman(roman, key)
        assert chord_from_roman(roman_numeral(chord, key), key) == chord
