"""The model's chord classes round-trip, and four-voice sonorities are read as chords."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cantus.harmony.vocabulary import (
    CHORD_CLASSES,
    MODEL_QUALITIES,
    chord_inversion,
    chord_to_class,
    class_to_chord,
    identify_chord,
)
from cantus.music.chords import ChordQuality, ChordSymbol
from cantus.music.notes import Key, Mode


@given(
    chord_class=st.integers(0, CHORD_CLASSES - 1),
    tonic=st.integers(0, 11),
    mode=st.sampled_from(list(Mode)),
    inversion=st.integers(0, 3),
)
def test_class_round_trip_in_every_key(chord_class, tonic, mode, inversion):
    key = Key(tonic, mode)
    chord = class_to_chord(chord_class, key, inversion)
    assert chord_to_class(chord, key) == chord_class
    expected = inversion if inversion < len(chord.tones) else 0
    assert chord_inversion(chord) == expected
    # Printing and parsing keep the chord (slash bass included).
    assert ChordSymbol.parse(str(chord)) == chord


def test_classes_are_key_relative():
    assert chord_to_class(ChordSymbol.parse("G7"), Key(0)) == chord_to_class(
        ChordSymbol.parse("D7"), Key(7)
    )


def test_a_quality_outside_the_vocabulary_is_refused():
    assert ChordQuality.MAJOR_6 not in MODEL_QUALITIES
    with pytest.raises(ValueError, match="not in the model vocabulary"):
        chord_to_class(ChordSymbol.parse("C6"), Key(0))
    with pytest.raises(ValueError, match="chord class"):
        class_to_chord(CHORD_CLASSES, Key(0))


def voices(*pitches: int) -> tuple[Counter, int]:
    return Counter(p % 12 for p in pitches), min(pitches) % 12


@pytest.mark.parametrize(
    ("pitches", "expected"),
    [
        ((48, 64, 67, 72), "C"),  # C E G C
        ((52, 60, 67, 72), "C/E"),  # first inversion
        ((43, 59, 65, 74), "G7"),  # G B F D
        ((43, 59, 65, 71), "G7"),  # fifth left out
        ((47, 62, 65, 74), "Bdim"),
        ((45, 60, 67, 76), "Am7"),
        ((43, 60, 67, 74), "Gsus4"),  # G C G D
        ((41, 57, 64, 72), "Fmaj7"),
        ((50, 62, 65, 71), "Bdim/D"),
    ],
)
def test_identify_chord(pitches, expected):
    assert str(identify_chord(*voices(*pitches))) == expected


def test_a_unison_is_no_chord():
    assert identify_chord(*voices(60, 72, 48, 60)) is None
    assert identify_chord({}, None) is None
