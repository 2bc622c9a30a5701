"""The harmony metrics (Yeh et al. 2020) on small cases worked by hand."""

import math

import pytest

from cantus.eval.harmony import (
    chord_coverage,
    chord_histogram_entropy,
    chord_tonal_distance,
    chord_tone_ratio,
    chord_tone_share,
    melody_chord_tonal_distance,
    parallel_rate,
    pitch_consistency,
    root_agreement,
    tonal_distance,
    voiced_slices,
)
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Bar, Meter, Note

FOUR = Meter(4, 4)


def chords(*names: str | None) -> list[list[ChordSymbol | None]]:
    symbols = [ChordSymbol.parse(n) if n else None for n in names]
    return [symbols[i : i + 4] for i in range(0, len(symbols), 4)]


def quarters(*pitches: int) -> list[Bar]:
    bars = []
    for start in range(0, len(pitches), 4):
        notes = tuple(Note(i * 480, p, 480) for i, p in enumerate(pitches[start : start + 4]))
        bars.append(Bar(FOUR, notes))
    return bars


def test_histogram_entropy_coverage_and_tonal_distance():
    progression = chords("C", "C", "G", "G/B", "Am", None, "F", "C")
    assert chord_coverage(progression) == 4  # G/B counts as G; None repeats Am
    counts = [3, 2, 2, 1]  # C, G, Am (held), F
    assert chord_histogram_entropy(progression) == pytest.approx(
        -sum(n / 8 * math.log(n / 8) for n in counts)
    )
    assert tonal_distance([0, 4, 7], [0, 4, 7]) == 0
    assert tonal_distance([0, 4, 7], [7, 11, 2]) > tonal_distance([0, 4, 7], [9, 0, 4]) > 0
    assert chord_tonal_distance(chords("C", "C", "C", "C")) == 0


def test_chord_tone_ratio_counts_proper_non_chord_tones():
    melody = quarters(60, 62, 64, 69)  # C, D (passing, resolves by step), E, A (non-chord)
    c = chords("C", "C", "C", "C")
    assert chord_tone_ratio(melody, c) == pytest.approx((2 + 1) / (2 + 2))
    assert chord_tone_share(melody, c) == pytest.approx(0.5)
    assert chord_tone_ratio(quarters(60, 64, 67, 72), c) == 1.0


def test_pitch_consistency_and_melody_chord_distance():
    assert pitch_consistency(quarters(60, 60, 60, 60), chords("C", "C", "C", "C")) == pytest.approx(
        (1 + 1 + 0) / 3  # C against C (unison), E (sixth above E), G (fourth above G)
    )
    assert pitch_consistency(quarters(61, 61, 61, 61), chords("C", "C", "C", "C")) < 0
    close = melody_chord_tonal_distance(quarters(60, 64, 67, 60), chords("C", "C", "C", "C"))
    far = melody_chord_tonal_distance(quarters(61, 66, 70, 61), chords("C", "C", "C", "C"))
    assert close < far


def test_root_agreement_ignores_unknown_beats():
    assert root_agreement(chords("C", "G", "Am", None), chords("C/E", "G7", "F", "C")) == 2 / 3


def test_parallel_rate():
    # Bass and soprano move C-G to D-A: parallel fifths.
    assert parallel_rate([(48, 55, 64, 67), (50, 57, 65, 69)]) == (1, 1)
    # Contrary motion, a held slice and a rest: no parallels, one move counted.
    assert parallel_rate([(48, 55, 64, 72), (47, 55, 62, 74), (47, 55, 62, 74), None]) == (0, 1)


def test_voiced_slices_put_the_voicing_under_the_tune():
    melody = quarters(72, 74, 76, 77, 79, 77, 76, 72)
    slices = voiced_slices(melody, chords("C", "G", "C", "F", "C", "G7", "C", "C"))
    assert len(slices) == 8
    for voices in slices:
        assert voices is not None and len(voices) == 4
        assert list(voices) == sorted(voices)  # the alto stays under the soprano


def test_control_profile_counts_functions_sevenths_and_harmonic_rhythm():
    from dataclasses import replace

    from cantus.eval.harmony import (
        beats_differing,
        chord_agreement,
        chord_changes,
        chord_function,
        chord_profile,
    )
    from cantus.harmony.dataset import HarmonizedTune
    from cantus.music.notes import Key, Mode
    from cantus.music.styles import Energy, Style

    c_major, a_minor = Key(0, Mode.MAJOR), Key(9, Mode.MINOR)
    assert [
        chord_function(ChordSymbol.parse(n), c_major) for n in ("C", "F7", "G/B", "Am", "D")
    ] == [
        "I",
        "IV",
        "V",
        "vi",
        None,
    ]
    assert chord_function(ChordSymbol.parse("F"), a_minor) == "vi"  # VI in minor
    progression = chords("C", "C", "G7", "G7", "Am", "Fsus4", "C/E", "C")
    assert chord_changes(progression) == 4  # C/E to C is no change
    bars = quarters(60, 60, 62, 62, 64, 65, 64, 60)
    tune = HarmonizedTune(
        "t", "test", Style.FOLK, Energy.MID, c_major, 100.0, tuple(bars), (), (), "test"
    )
    profile = chord_profile([(tune, progression)])
    assert profile["I"] == pytest.approx(4 / 8)
    assert profile["V"] == profile["7ths"] == pytest.approx(2 / 8)
    assert profile["vi"] == profile["sus"] == pytest.approx(1 / 8)
    assert profile["changes/bar"] == pytest.approx(2.0)
    assert profile["CC"] == 4
    other = chords("C", "C", "G", "G", "Am", "F", "C", "C")
    assert chord_agreement(other, progression) == pytest.approx(5 / 8)
    assert beats_differing([other], [progression]) == pytest.approx(3 / 8)
    assert chord_profile([(replace(tune, bars=()), [])])["I"] == 0.0
