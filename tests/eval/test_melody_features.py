"""Per-melody features (``cantus.eval.melody_features``) on melodies whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cantus.eval.melody_features import (
    HISTOGRAMS,
    NOTE_LENGTH_BINS,
    SCALARS,
    MelodyFeatures,
    direction_change_rate,
    feature_matrix,
    feature_names,
    feature_vector,
    first_bars,
    melody_features,
    note_length_bin,
)
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note

from .melodies import C_MAJOR, COMMON, EIGHTH, QUARTER, from_bars, quarters

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def test_fields_are_the_histograms_then_the_scalars() -> None:
    names = list(MelodyFeatures.__dataclass_fields__)
    assert names == [*HISTOGRAMS, *SCALARS]
    assert len(feature_names()) == 12 + 25 + len(NOTE_LENGTH_BINS) + len(SCALARS)


def test_a_scale_moves_only_by_step_in_one_direction() -> None:
    features = melody_features(quarters(C_MAJOR_SCALE))
    assert features.stepwise_rate == 1.0
    assert features.repeated_note_rate == 0.0
    assert features.direction_change_rate == 0.0
    assert features.pitch_range == 12.0
    assert features.top_pitch_class_share == 2 / 8  # C twice
    assert features.pitch_class[0] == pytest.approx(2 / 8)
    assert features.pitch_class[[2, 4, 5, 7, 9, 11]] == pytest.approx([1 / 8] * 6)
    assert features.pitch_class[[1, 3, 6, 8, 10]].sum() == 0.0
    assert features.interval[12 + 2] == pytest.approx(5 / 7)  # whole steps up
    assert features.interval[12 + 1] == pytest.approx(2 / 7)  # E-F and B-C


def test_one_hammered_pitch_is_all_repeats() -> None:
    features = melody_features(quarters([67] * 8))
    assert features.repeated_note_rate == 1.0
    assert features.stepwise_rate == 0.0
    assert features.top_pitch_class_share == 1.0
    assert features.pitch_range == 0.0
    assert features.direction_change_rate == 0.0  # no non-zero intervals: undefined, 0
    assert features.interval[12] == 1.0


def test_a_zigzag_changes_direction_at_every_note() -> None:
    features = melody_features(quarters([60, 64, 60, 64, 60, 64, 60, 64]))
    assert features.direction_change_rate == 1.0
    assert features.stepwise_rate == 0.0


def test_direction_changes_skip_repeated_notes() -> None:
    assert direction_change_rate([2, 0, 0, 2, -1]) == pytest.approx(1 / 2)
    assert direction_change_rate([3]) == 0.0


def test_pitch_classes_are_counted_from_the_given_tonic() -> None:
    melody = quarters([67, 71, 74, 79], key=Key(7))  # G B D G in G major
    features = melody_features(melody)
    assert features.pitch_class[[0, 4, 7]] == pytest.approx([0.5, 0.25, 0.25])
    as_c = melody_features(melody, Key(0))
    assert as_c.pitch_class[[7, 11, 2]] == pytest.approx([0.5, 0.25, 0.25])


@pytest.mark.parametrize(
    ("sixteenths", "expected"),
    [
        *[(1, 1), (2, 2), (3, 3), (4, 4), (5, 4), (6, 6), (7, 6), (8, 8), (11, 8)],
        *[(12, 12), (15, 12), (16, 16), (24, 16), (48, 16)],
    ],
)
def test_note_lengths_fall_in_the_bin_at_or_below_them(sixteenths: int, expected: int) -> None:
    assert NOTE_LENGTH_BINS[note_length_bin(sixteenths * 120)] == expected


def test_rhythm_on_beats_syncopation_and_rests() -> None:
    # 4/4: eighth, quarter (off the beat, held over beat 2: syncopated), eighth; half rest
    melody = from_bars([[(0, 60, EIGHTH), (240, 62, QUARTER), (720, 64, EIGHTH)]])
    features = melody_features(melody)
    assert features.on_beat_share == pytest.approx(1 / 3)
    assert features.syncopation_rate == pytest.approx(1 / 3)
    assert features.rest_share == pytest.approx(0.5)
    assert features.notes_per_bar == 3.0


def test_a_pickups_padding_is_not_a_rest() -> None:
    # the corpus writes an upbeat as a bar of rest ending in it: three beats nobody hears
    pickup = [(3 * QUARTER, 67, QUARTER)]
    full = [(0, 72, QUARTER), (QUARTER, 71, QUARTER), (2 * QUARTER, 69, 2 * QUARTER)]
    features = melody_features(from_bars([pickup, full]))
    assert features.rest_share == 0.0
    assert features.notes_per_bar == pytest.approx(4 / 1.25)
    breath = [(0, 72, QUARTER), (QUARTER, 71, QUARTER)]  # a rest inside the tune still counts
    assert melody_features(from_bars([pickup, breath])).rest_share == pytest.approx(0.4)


def test_compound_meter_beats_are_dotted_quarters() -> None:
    six_eight = Meter(6, 8)
    notes = tuple(Note(i * EIGHTH, 60 + i, EIGHTH) for i in range(6))
    features = melody_features(Melody(C_MAJOR, 100.0, (Bar(six_eight, notes),)))
    assert features.on_beat_share == pytest.approx(2 / 6)
    assert features.syncopation_rate == 0.0
    assert features.rest_share == 0.0


def test_an_empty_melody_has_finite_zero_features() -> None:
    vector = feature_vector(melody_features(Melody(C_MAJOR, 100.0, (Bar(COMMON),))))
    assert np.all(vector[:-1] == 0.0)
    assert vector[-1] == 1.0  # all rest
    assert np.isfinite(vector).all()


def test_first_bars_cuts_or_drops() -> None:
    melody = quarters(list(range(60, 76)))  # 4 bars
    assert len(first_bars(melody, 3).bars) == 3
    assert first_bars(melody, 4).bars == melody.bars
    assert first_bars(melody, 5) is None


def test_feature_matrix_rows_are_feature_vectors() -> None:
    melodies = [quarters(C_MAJOR_SCALE), quarters([67] * 8)]
    matrix = feature_matrix(melodies)
    assert matrix.shape == (2, len(feature_names()))
    assert matrix[1] == pytest.approx(feature_vector(melody_features(melodies[1])))


NOTES = st.lists(
    st.tuples(st.integers(48, 84), st.sampled_from((120, 240, 360, 480, 720, 960))),
    min_size=2,
    max_size=40,
)


def _melody_of(notes: list[tuple[int, int]], tonic: int, mode: Mode) -> Melody:
    """Notes laid end to end in 4/4, cut at barlines as the corpus cuts them."""
    bars: list[list[Note]] = [[]]
    onset = 0
    for pitch, duration in notes:
        while duration > 0:
            room = COMMON.bar_ticks - onset
            piece = min(room, duration)
            bars[-1].append(Note(onset, pitch, piece))
            onset, duration = onset + piece, duration - piece
            if onset == COMMON.bar_ticks:
                bars.append([])
                onset = 0
    return Melody(
        Key(tonic, mode), 100.0, tuple(Bar(COMMON, tuple(b)) for b in bars if b) or (Bar(COMMON),)
    )


@given(NOTES, st.integers(0, 11), st.sampled_from(list(Mode)))
def test_features_are_bounded_and_histograms_sum_to_one(notes, tonic, mode) -> None:
    features = melody_features(_melody_of(notes, tonic, mode))
    for name in HISTOGRAMS:
        assert features.histograms()[name].sum() == pytest.approx(1.0)
    for name, value in features.scalars().items():
        assert np.isfinite(value)
        if name not in ("pitch_range", "notes_per_bar"):
            assert 0.0 <= value <= 1.0, name


@given(NOTES, st.integers(0, 11), st.integers(-12, 12))
def test_features_do_not_change_when_melody_and_key_are_transposed(notes, tonic, shift) -> None:
    melody = _melody_of(notes, tonic, Mode.MAJOR)
    moved = _melody_of([(p + shift, d) for p, d in notes], (tonic + shift) % 12, Mode.MAJOR)
    assert feature_vector(melody_features(moved)) == pytest.approx(
        feature_vector(melody_features(melody))
    )
