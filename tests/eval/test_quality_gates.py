"""Quality gates: a small sample from the shipped melody checkpoint, sampled with the melody
service's settings (tonal emphasis, key guidance where the checkpoint supports it; each piece
decoded freely, without a form plan), must stay inside generous bounds around the real
corpus's statistics.

These are the sanity checks that would have caught the hammered notes of issue 14 (pieces
playing one pitch in 69 % of their notes; 34 % repeated notes and 44 % top pitch class on
average through the gateway, against 19 % and 30 % in real tunes). They run in a few
seconds on one core and need no corpus build.

Where the bounds come from: the held-out real tunes (valid and test splits, keys as music21
hears them, the first 8 bars of each: 961 tunes, 217 of them minor), measured with
``cantus.eval.melody_features``. For a sample mean, the bound lies outside the range of
means of 24 real tunes (12 major, 12 minor) drawn 20,000 times (0.1th to 99.9th percentile
quoted beside each bound), so a model as real as the corpus fails a bound about never; the
single-piece bound lies above the real tunes' 99.9th percentile.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cantus.eval.melody_features import melody_features
from cantus.eval.melody_sampling import SERVED_TONAL_EMPHASIS
from cantus.eval.realness_run import KEY_CYCLE, sample_melodies
from cantus.melody.controls import Controls
from cantus.music.notes import Meter
from cantus.music.styles import Energy, Style
from cantus.settings import CHECKPOINTS

PIECES = 192
"""Every key eight times. At 24 pieces the sample's top-pitch-class mean moved by 0.015 with the
opening alone (0.379 against 0.394); at 48, three seed sets of the served melody of session 21
gave 0.384, 0.360 and 0.360 (sd of a 48-piece mean about 0.014), against 0.355 and 0.347 for
session 20's; over all minor keys in folk 2/4 (72 pieces) it is 0.378 against 0.356, the
corpus's 0.341 (docs/results/melody_realness_decomposition.md, session 21). At 96 pieces
(until session 26) the gate's own seeds gave 0.376, against 0.331-0.356 for three other seed
sets of 96: its margin under the bound was smaller than its noise, and a change that moved
the other sets' means by +0.001 (the key areas' corpus clarity, session 26) took it to 0.382.
These 192 give 0.361 before that change and 0.362 after."""
BARS = 8

MAX_MEAN_REPEATED_NOTE_RATE = 0.30
"""Real 24-tune means: 0.11-0.27 (corpus mean 0.19); the hammering model: 0.34."""
MIN_MEAN_REPEATED_NOTE_RATE = 0.05
"""A floor far below the real means, so a model that never repeats a note is flagged too."""
MAX_MEAN_TOP_PITCH_CLASS_SHARE = 0.38
"""Real 24-tune means: 0.26-0.35 (corpus mean 0.30); the hammering model: 0.44."""
MAX_PIECE_TOP_PITCH_CLASS_SHARE = 0.65
"""Real tunes' 99.9th percentile: 0.64 (one held-out tune of 961 reaches 0.79); the worst
hammered piece: 0.69."""
MEAN_STEPWISE_RATE = (0.36, 0.66)
"""Real 24-tune means: 0.41-0.61 (corpus mean 0.49); the hammering model: 0.32."""
MAX_MEAN_DIRECTION_CHANGE_RATE = 0.62
"""Real 24-tune means: 0.42-0.57 (corpus mean 0.50); the zig-zagging model: 0.64. (The
checkpoint shipped before issue 14, without tonal emphasis, gives 0.59 on this sample.)"""

METERS = ("4/4", "3/4", "6/8", "2/4")
STYLES = (Style.FOLK, Style.CELTIC, Style.FOLK)  # the corpus is mostly folk, then celtic
ENERGIES = (Energy.LOW, Energy.MID, Energy.HIGH, Energy.MID)


def _jobs() -> list[tuple[Controls, int]]:
    """Every one of the 24 keys ``PIECES`` / 24 times, meters, styles and energies cycling."""
    return [
        (
            Controls(
                key=key,
                meter=Meter.parse(METERS[i % len(METERS)]),
                tempo_bpm=100.0,
                style=STYLES[i % len(STYLES)],
                energy=ENERGIES[i % len(ENERGIES)],
            ),
            1000 + i,
        )
        for i, key in enumerate((KEY_CYCLE * (PIECES // len(KEY_CYCLE)))[:PIECES])
    ]


@pytest.fixture(scope="module")
def sampled_features():  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    melodies = sample_melodies(
        CHECKPOINTS / "melody_lm.pt",
        _jobs(),
        n_bars=BARS,
        tonal_emphasis=SERVED_TONAL_EMPHASIS,  # the service's settings, guidance too
    )
    assert all(m is not None for m in melodies), "the shipped checkpoint failed to sample"
    return [melody_features(m) for m in melodies]


def _mean(features, name: str) -> float:  # type: ignore[no-untyped-def]
    return float(np.mean([getattr(f, name) for f in features]))


def test_melodies_do_not_hammer_repeated_notes(sampled_features) -> None:  # type: ignore[no-untyped-def]
    rate = _mean(sampled_features, "repeated_note_rate")
    assert MIN_MEAN_REPEATED_NOTE_RATE <= rate <= MAX_MEAN_REPEATED_NOTE_RATE, rate


def test_no_pitch_class_dominates(sampled_features) -> None:  # type: ignore[no-untyped-def]
    shares = [f.top_pitch_class_share for f in sampled_features]
    assert np.mean(shares) <= MAX_MEAN_TOP_PITCH_CLASS_SHARE, np.mean(shares)
    assert max(shares) <= MAX_PIECE_TOP_PITCH_CLASS_SHARE, sorted(shares)[-3:]


def test_melodies_move_by_step_as_often_as_real_tunes(sampled_features) -> None:  # type: ignore[no-untyped-def]
    low, high = MEAN_STEPWISE_RATE
    assert low <= _mean(sampled_features, "stepwise_rate") <= high


def test_melodies_do_not_zigzag(sampled_features) -> None:  # type: ignore[no-untyped-def]
    rate = _mean(sampled_features, "direction_change_rate")
    assert rate <= MAX_MEAN_DIRECTION_CHANGE_RATE, rate
