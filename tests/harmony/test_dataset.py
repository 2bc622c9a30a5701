"""Reading a Bach chorale into a melody with a chord per beat, and training windows."""

import numpy as np
import pytest

from cantus.harmony.context import CONTEXT_BEATS, PAD, START
from cantus.harmony.dataset import HarmonizedTune, chorale_to_tune
from cantus.harmony.features import beat_spans
from cantus.harmony.training import encode_tune, window_batch
from cantus.music.notes import Key, Mode
from cantus.music.styles import Style


@pytest.fixture(scope="module")
def chorale() -> HarmonizedTune:
    from music21 import corpus

    path = next(str(p) for p in corpus.getComposer("bach") if str(p).endswith("bwv10.7.mxl"))
    return chorale_to_tune(path)


def test_chorale_chords_come_from_the_four_voices(chorale):
    assert chorale.key == Key(7, Mode.MINOR)  # G minor
    assert chorale.style is Style.CHORALE
    assert str(chorale.meter) == "4/4"
    assert all(len(bar) == len(beat_spans(chorale.meter)) for bar in chorale.chords)
    # The first beats: G minor under a D in the soprano, voices bass to soprano.
    assert chorale.chords[0][0] == "Gm"
    assert chorale.voices[0][0] == (55, 58, 67, 74)
    symbols = [c for bar in chorale.chord_symbols() for c in bar if c is not None]
    assert len(symbols) > 0.9 * sum(len(bar) for bar in chorale.chords)
    for bar, voices in zip(chorale.bars, chorale.voices, strict=True):
        for (onset, _), satb in zip(beat_spans(chorale.meter), voices, strict=True):
            soprano = next((n.pitch for n in bar.notes if n.onset <= onset < n.end), None)
            if satb is not None and soprano is not None:
                assert satb[-1] == soprano  # the melody is the soprano voice


def test_json_round_trip(chorale):
    assert HarmonizedTune.from_json(chorale.to_json()) == chorale


def test_training_windows(chorale):
    encoded = encode_tune(chorale)
    beats = sum(len(bar) for bar in chorale.chords)
    assert encoded.features.shape == (beats, 70)
    assert encoded.bar_ends[-1] == beats
    features, previous, chords, inversions = window_batch(
        [encoded, encoded], [encoded.bar_ends[1], encoded.bar_ends[-1]], [0, 5]
    )
    assert features.shape == (2, CONTEXT_BEATS, 70)
    end = encoded.bar_ends[1]
    assert (previous[0, : CONTEXT_BEATS - end] == PAD).all()
    assert previous[0, CONTEXT_BEATS - end] == START
    assert (chords[0, : CONTEXT_BEATS - end] == -100).all()
    assert (chords[1] != -100).sum() > 0.9 * CONTEXT_BEATS
    assert ((inversions == -100) == (chords == -100)).all()
    # Transposition moves only the register of sounding beats.
    row = encoded.features[-CONTEXT_BEATS:]
    sounding = row[:, 12:24].sum(axis=1) > 0
    np.testing.assert_allclose(
        features[1, sounding, 62].numpy(), row[sounding, 62] + 5 / 12, rtol=1e-6
    )
