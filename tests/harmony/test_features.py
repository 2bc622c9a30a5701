"""Beat features: one row per beat, key-relative, with the bar and one bar of lookahead."""

import numpy as np
import pytest

from cantus.harmony.features import (
    FEATURES,
    REGISTER_COLUMN,
    bar_features,
    beat_spans,
    beats_in_bar,
)
from cantus.music.notes import Bar, Key, Meter, Mode, Note
from cantus.music.styles import Energy, Style


@pytest.mark.parametrize(
    ("meter", "beats"),
    [("4/4", 4), ("3/4", 3), ("6/8", 2), ("12/8", 4), ("5/4", 5), ("7/8", 7), ("2/2", 2)],
)
def test_beats_in_bar(meter, beats):
    parsed = Meter.parse(meter)
    assert beats_in_bar(parsed) == beats
    spans = beat_spans(parsed)
    assert len(spans) == beats
    assert sum(length for _, length in spans) == parsed.bar_ticks


def bar(meter: str, notes: list[tuple[int, int, int]]) -> Bar:
    return Bar(Meter.parse(meter), tuple(Note(*n) for n in notes))


def test_features_are_the_same_in_every_key_but_the_register():
    tune = bar("4/4", [(0, 60, 480), (480, 64, 960), (1440, 67, 480)])
    after = bar("4/4", [(0, 65, 1920)])
    here = bar_features(
        tune, Key(0), next_bar=after, is_final=False, style=Style.FOLK, energy=Energy.LOW
    )
    moved = bar_features(
        Bar(tune.meter, tuple(Note(n.onset, n.pitch + 7, n.duration) for n in tune.notes)),
        Key(7),
        next_bar=Bar(after.meter, (Note(0, 72, 1920),)),
        is_final=False,
        style=Style.FOLK,
        energy=Energy.LOW,
    )
    assert here.shape == (4, FEATURES)
    columns = [c for c in range(FEATURES) if c != REGISTER_COLUMN]
    np.testing.assert_allclose(here[:, columns], moved[:, columns])
    assert here[0, 0] == 1.0 and here[1, 4] == 1.0  # C on beat 1, E on beat 2
    assert here[2, 12 + 4] == 1.0  # the held E sounds at beat 3's onset
    assert here[0, 36 + 5] == 1.0  # lookahead: the next bar is all F


def test_a_bar_of_rests_and_its_flags():
    rests = bar("7/8", [])
    features = bar_features(
        rests, Key(2, Mode.MINOR), next_bar=None, is_final=True, style=Style.CHORALE,
        energy=Energy.HIGH,
    )  # fmt: skip
    assert features.shape == (7, FEATURES)
    assert features[:, :48].sum() == 0
    assert features[:, 59].all() and features[:, 60].all() and features[:, 58].all()
    assert not features[:, 61].any()  # no next bar known
    assert features[:, 63].all()  # minor
    assert features[0, 56] == 1 and features[6, 57] == 1
