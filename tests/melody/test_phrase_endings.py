"""Where phrases arrive at their cadence: the measurement and the draw."""

import random

from cantus.melody.phrase_endings import (
    CADENCE_BEATS,
    cadence_beat_of,
    draw_cadence_beat,
    measure_cadence_beats,
    phrase_end_bars,
)
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Melody, Meter, Note

Q = TICKS_PER_QUARTER
WALTZ = Meter(3, 4)


def _bar(*notes: tuple[int, int]) -> Bar:
    return Bar(WALTZ, tuple(Note(onset, 60, length) for onset, length in notes))


MOVING = _bar((0, Q), (Q, Q), (2 * Q, Q))
DOWNBEAT_CADENCE = _bar((0, 2 * Q), (2 * Q, Q))  # half note, then an upbeat
PICKUP = _bar((2 * Q, Q))


def test_the_cadence_is_where_the_longest_note_on_a_beat_starts() -> None:
    assert cadence_beat_of(DOWNBEAT_CADENCE, WALTZ) == 0
    assert cadence_beat_of(_bar((0, Q // 2), (Q // 2, Q // 2), (Q, 2 * Q)), WALTZ) == 1
    assert cadence_beat_of(MOVING, WALTZ) == 0  # equals: the earliest
    assert cadence_beat_of(_bar((Q // 2, Q // 2)), WALTZ) is None  # nothing on a beat


def test_phrases_are_counted_from_the_first_full_bar() -> None:
    plain = Melody(Key(0), 100.0, (MOVING, MOVING, MOVING, DOWNBEAT_CADENCE) * 2)
    assert phrase_end_bars(plain) == [DOWNBEAT_CADENCE, DOWNBEAT_CADENCE]
    with_pickup = Melody(Key(0), 100.0, (PICKUP, MOVING, MOVING, MOVING, DOWNBEAT_CADENCE))
    assert phrase_end_bars(with_pickup) == [DOWNBEAT_CADENCE]


def test_the_shares_are_measured_per_meter() -> None:
    late = _bar((0, Q // 2), (Q // 2, Q // 2), (Q, 2 * Q))
    tunes = [Melody(Key(0), 100.0, (MOVING, MOVING, MOVING, DOWNBEAT_CADENCE))] * 3
    tunes += [Melody(Key(0), 100.0, (MOVING, MOVING, MOVING, late))]
    assert measure_cadence_beats(tunes, minimum=4) == {(3, 4): (0.75, 0.25)}
    assert measure_cadence_beats(tunes, minimum=5) == {}  # too few phrases to say


def test_the_draw_follows_the_corpus_and_is_seeded() -> None:
    draws = [draw_cadence_beat(WALTZ, random.Random(seed)) for seed in range(2000)]
    assert draws == [draw_cadence_beat(WALTZ, random.Random(seed)) for seed in range(2000)]
    assert abs(draws.count(0) / len(draws) - CADENCE_BEATS[(3, 4)][0]) < 0.04
    assert set(draws) <= {0, 1, 2}
    assert draw_cadence_beat(Meter(5, 4), random.Random(0)) == -1  # not in the table
    assert all(abs(sum(shares) - 1) < 0.01 for shares in CADENCE_BEATS.values())
