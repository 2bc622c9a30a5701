"""Repetition structure (``cantus.eval.structure``): a melody built from a repeated phrase
against one of random bars."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.eval.structure import (
    Band,
    bar_similarity,
    phrase_end_weight,
    phrase_pattern,
    plot_self_similarity,
    repetition,
    self_similarity_matrix,
    structure_measures,
    structureness,
    varied_returns,
)
from cantus.music.notes import Bar, Melody, MusicError, Note

from .melodies import C_MAJOR, COMMON, QUARTER, from_bars, random_bar, random_melody


def _bar(*pitches: int) -> Bar:
    return Bar(COMMON, tuple(Note(i * QUARTER, p, QUARTER) for i, p in enumerate(pitches)))


def _phrase_melody(rng: random.Random, phrase_bars: int = 4, times: int = 4) -> Melody:
    phrase = [random_bar(rng) for _ in range(phrase_bars)]
    return Melody(C_MAJOR, 100.0, tuple(phrase * times))


def _held(pitch: int) -> list[tuple[int, int, int]]:
    return [(0, pitch, 4 * QUARTER)]


def _running(pitch: int) -> list[tuple[int, int, int]]:
    return [(i * QUARTER, pitch + i, QUARTER) for i in range(4)]


def test_phrase_ends_are_counted_from_the_tunes_own_opening() -> None:
    phrase = [_running(60), _running(62), _running(64), _held(60)]
    assert phrase_end_weight(from_bars(phrase * 2)) == pytest.approx(0.75)
    # the same tune after a one-beat pickup: its phrases end a bar later
    pickup = [(3 * QUARTER, 59, QUARTER)]
    assert phrase_end_weight(from_bars([pickup, *phrase * 2])) == pytest.approx(0.75)
    # long notes one bar early (a cadence forced before the phrase is over) weigh less
    early = [_running(60), _running(62), _held(64), _running(60)]
    assert phrase_end_weight(from_bars(early * 2)) == pytest.approx(-0.25)
    assert phrase_end_weight(from_bars([_running(60)] * 3)) == 0.0  # no phrase


def test_bar_similarity() -> None:
    a = _bar(60, 62, 64, 65)
    assert bar_similarity(a, a) == 1.0
    assert bar_similarity(a, _bar(62, 64, 66, 67)) == 1.0  # transposed up a step
    assert bar_similarity(a, _bar(60, 62, 64, 67)) == pytest.approx(3 / 5)  # one note changed
    assert bar_similarity(a, _bar(60, 62, 67, 69)) == pytest.approx(2 / 6)
    assert bar_similarity(_bar(60), _bar(67)) == 0.0  # one-note bars are not transposed
    assert bar_similarity(Bar(COMMON), Bar(COMMON)) == 1.0
    assert bar_similarity(Bar(COMMON), a) == 0.0


def test_a_repeated_phrase_returns_and_is_structured() -> None:
    measures = structure_measures(_phrase_melody(random.Random(0)))
    assert measures.repetition.exact == pytest.approx(12 / 15)
    assert measures.repetition.returning >= 12 / 15
    assert measures.structureness.si > 0.7
    assert measures.structureness.length in (4, 8)
    assert len(measures.structureness.repeats) >= 2


def test_random_bars_return_less_and_are_less_structured() -> None:
    rng = random.Random(1)
    structured = [structure_measures(_phrase_melody(rng)) for _ in range(10)]
    scattered = [structure_measures(random_melody(rng, bars=16)) for _ in range(10)]
    assert max(m.structureness.si for m in scattered) < min(m.structureness.si for m in structured)
    assert np.mean([m.repetition.exact for m in scattered]) < 0.2
    assert np.mean([m.structureness.si for m in scattered]) < 0.35


def test_aaba_finds_the_returning_a() -> None:
    a = [_bar(60, 62, 64, 65), _bar(67, 65, 64, 62), _bar(60, 64, 67, 72), _bar(71, 67, 62, 60)]
    b = [_bar(69, 69, 69, 69), _bar(65, 65, 65, 65), _bar(67, 67, 67, 67), _bar(62, 62, 62, 62)]
    melody = Melody(C_MAJOR, 100.0, tuple(a + a + b + a))
    assert repetition(melody).exact == pytest.approx(8 / 15)
    found = structureness(melody)
    assert found.length == 4 and found.repeats == (0, 4, 12)
    # three of four sections covered: score 2/3, coverage 8/16 -> harmonic mean 4/7
    assert found.si == pytest.approx(4 / 7)


def test_a_melody_that_never_returns_scores_zero() -> None:
    melody = from_bars([[(0, 60 + i, 1920)] for i in range(8)])  # one note a bar, all different
    assert repetition(melody).returning == 0.0
    assert structureness(melody).si == 0.0
    assert structureness(Melody(C_MAJOR, 100.0, (_bar(60),))).si == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_similarity_matrix_is_symmetric_and_measures_are_bounded(seed: int, bars: int) -> None:
    melody = random_melody(random.Random(seed), bars=bars)
    matrix = self_similarity_matrix(melody)
    assert matrix.shape == (bars, bars)
    assert np.allclose(matrix, matrix.T)
    assert np.all(np.diag(matrix) == 1.0)
    assert matrix.min() >= 0.0 and matrix.max() <= 1.0
    measures = structure_measures(melody)
    assert 0.0 <= measures.repetition.returning <= 1.0
    assert 0.0 <= measures.structureness.si <= 1.0


def test_band_is_percentiles() -> None:
    band = Band.of(list(range(101)))
    assert (band.low, band.median, band.high, band.n) == (5.0, 50.0, 95.0, 101)
    assert band.contains(50.0) and not band.contains(99.0)


def test_plot_self_similarity_writes_a_png(tmp_path) -> None:
    path = plot_self_similarity(_phrase_melody(random.Random(2)), tmp_path / "ssm.png", title="x")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_phrase_pattern_names_new_varied_and_repeated_phrases() -> None:
    a = [_bar(60, 62, 64, 65), _bar(67, 65, 64, 62), _bar(60, 64, 67, 64), _bar(62, 59, 55, 60)]
    a_varied = [*a[:3], _bar(62, 67, 71, 74)]  # a new cadence bar: 3 of 4 bars kept
    b = [_bar(72, 71, 69, 67), _bar(65, 69, 72, 69), _bar(71, 67, 62, 67), _bar(72, 60, 72, 60)]
    c = [_bar(57, 59, 60, 57), _bar(53, 53, 57, 60), _bar(58, 58, 58, 58), _bar(61, 66, 70, 61)]
    assert phrase_pattern(a + a_varied + b + c, 4) == "A A~ B C"
    assert phrase_pattern(a + b + a + b, 4) == "A B A= B="
    assert phrase_pattern(a + a_varied + b + b, 4) == "A A~ B B="
    assert phrase_pattern(a + b + c, 3) == "A B C"
    # a sequence (the phrase a step higher) is a repeat, as a listener hears it
    up = [
        Bar(COMMON, tuple(dataclasses.replace(n, pitch=n.pitch + 2) for n in bar.notes))
        for bar in a
    ]
    assert phrase_pattern(a + up, 2) == "A A="
    with pytest.raises(MusicError, match="need 16 bars"):
        phrase_pattern(a + b, 4)


def test_varied_returns_are_compared_with_their_source_bar_by_bar() -> None:
    a = [_bar(60, 62, 64, 65), _bar(67, 65, 64, 62), _bar(60, 64, 67, 64), _bar(62, 59, 55, 60)]
    a_varied = [_bar(60, 62, 64, 67), *a[1:3], _bar(62, 67, 71, 74)]
    b = [_bar(72, 71, 69, 67), _bar(65, 69, 72, 69), _bar(71, 67, 62, 67), _bar(72, 60, 72, 60)]
    (varied,) = varied_returns(a + b + a_varied + b, 4)  # B= is a repeat, not a variation
    assert varied[1:3] == (1.0, 1.0)
    assert varied[0] == pytest.approx(3 / 5)  # one note of four changed
    assert varied[3] < 0.5
    assert varied_returns(a + b + a + b, 4) == []


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(-12, 12))
def test_a_phrase_pattern_is_well_formed_and_heard_in_any_key(
    seed: int, phrases: int, shift: int
) -> None:
    rng = random.Random(seed)
    pool = [[random_bar(rng) for _ in range(4)] for _ in range(3)]
    bars = [bar for _ in range(phrases) for bar in rng.choice(pool)]
    pattern = phrase_pattern(bars, phrases)
    tokens = pattern.split()
    assert len(tokens) == phrases and tokens[0] == "A"
    stated = [t for t in tokens if len(t) == 1]
    assert stated == [chr(ord("A") + i) for i in range(len(stated))]  # letters in order
    assert all(t[0] in stated[: stated.index(t[0]) + 1] for t in tokens)
    moved = [
        Bar(COMMON, tuple(dataclasses.replace(n, pitch=n.pitch + shift) for n in bar.notes))
        for bar in bars
    ]
    assert phrase_pattern(moved, phrases) == pattern
