"""Tests for the music21 score to Melody conversion: measure layout and meter checks."""

from __future__ import annotations

from fractions import Fraction

import pytest
from music21 import meter, note, stream

from cantus.music.music21_io import (
    ScoreConversionError,
    abc_key_names_mode,
    measure_starts,
    score_to_melody,
)
from cantus.music.notes import Meter

BAR = 960  # a 2/4 bar in ticks


def test_pickup_is_right_aligned() -> None:
    assert measure_starts([Fraction(240), Fraction(BAR), Fraction(BAR)], BAR) == [720, 960, 1920]


def test_short_measures_join_to_one_bar() -> None:
    lengths = [Fraction(BAR), Fraction(720), Fraction(240), Fraction(BAR)]
    assert measure_starts(lengths, BAR) == [0, 960, 1680, 1920]


def test_measure_that_does_not_fit_starts_on_next_barline() -> None:
    lengths = [Fraction(BAR), Fraction(480), Fraction(720), Fraction(480)]
    assert measure_starts(lengths, BAR) == [0, 960, 1920, 2880]


def test_overfull_measure_is_rejected() -> None:
    with pytest.raises(ScoreConversionError) as caught:
        measure_starts([Fraction(BAR + 120)], BAR)
    assert caught.value.reason == "irregular_bars"


def _score(signatures: list[str]) -> stream.Score:
    part = stream.Part()
    previous = None
    for ratio in signatures:
        measure = stream.Measure()
        if ratio != previous:
            measure.append(meter.TimeSignature(ratio))
        bar = meter.TimeSignature(ratio).barDuration.quarterLength
        measure.append(note.Note("G4", quarterLength=bar))
        part.append(measure)
        previous = ratio
    score = stream.Score()
    score.insert(0, part)
    return score


def test_lasting_meter_change_is_rejected() -> None:
    with pytest.raises(ScoreConversionError) as caught:
        score_to_melody(_score(["2/4", "2/4", "3/4", "3/4"]), default_tempo_bpm=100)
    assert caught.value.reason == "meter_change"


def test_single_meter_score_converts() -> None:
    melody = score_to_melody(_score(["3/4"] * 4), default_tempo_bpm=80)
    assert melody.meter == Meter(3, 4)
    assert len(melody.bars) == 4
    assert melody.tempo_bpm == 80


@pytest.mark.parametrize(
    ("field", "named"), [("G", False), ("Em", True), ("Ador", True), ("Bb", False), ("F#mix", True)]
)
def test_abc_key_mode_detection(field: str, named: bool) -> None:
    assert abc_key_names_mode(field) is named
