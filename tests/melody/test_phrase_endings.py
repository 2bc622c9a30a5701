"""Where phrases arrive at their cadence: the measurement and the draw."""

import random

from cantus.melody.phrase_endings import (
    BREATH_ALWAYS,
    BREATH_HABITS,
    BREATH_NEVER,
    BREATH_SHARES,
    BREATH_SOMETIMES,
    CADENCE_BEATS,
    CADENCE_HOLDS,
    HOLD_BEAT,
    HOLD_LONG,
    HOLD_PART,
    HOLD_SHORT,
    UPBEAT_SHARES,
    breathes,
    cadence_beat_of,
    draw_breath,
    draw_breath_habit,
    draw_cadence_beat,
    draw_cadence_hold,
    draw_upbeat,
    hold_of,
    leads_on,
    measure_breaths,
    measure_cadence_beats,
    measure_cadence_holds,
    measure_upbeats,
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


HELD = _bar((0, 3 * Q))  # the cadence tone through the bar


def test_a_phrase_leads_on_where_a_note_follows_its_cadence_tone() -> None:
    assert leads_on(DOWNBEAT_CADENCE, WALTZ)
    assert not leads_on(HELD, WALTZ)
    assert not leads_on(_bar((0, 2 * Q)), WALTZ)  # a breath is no upbeat
    assert not leads_on(_bar((Q // 2, Q // 2)), WALTZ)  # no cadence tone on a beat


def test_upbeat_shares_are_measured_per_cadence_beat_leaving_out_the_last_bar() -> None:
    phrase = (MOVING, MOVING, MOVING)
    tunes = [Melody(Key(0), 100.0, (*phrase, DOWNBEAT_CADENCE, *phrase, HELD))] * 3
    tunes += [Melody(Key(0), 100.0, (*phrase, HELD, *phrase, HELD))]
    # the tunes' last bars (held) are not phrase ends the tune goes on after
    assert measure_upbeats(tunes, minimum=4) == {(3, 4): (0.75,)}
    assert measure_upbeats(tunes, minimum=5) == {}


def test_the_upbeat_draw_follows_the_corpus_per_cadence_beat() -> None:
    for beat in (0, 2):
        draws = [draw_upbeat(WALTZ, beat, random.Random(seed)) for seed in range(2000)]
        assert abs(sum(draws) / len(draws) - UPBEAT_SHARES[(3, 4)][beat]) < 0.04
    # the grammar's default cadence beat is the last but one
    default = [draw_upbeat(WALTZ, -1, random.Random(seed)) for seed in range(2000)]
    assert abs(sum(default) / len(default) - UPBEAT_SHARES[(3, 4)][1]) < 0.04
    assert draw_upbeat(Meter(5, 4), 0, random.Random(0)) is None  # not in the table
    assert draw_upbeat(Meter(6, 4), 3, random.Random(0)) is None  # too few such phrases


def test_a_beat_with_too_few_phrases_is_left_to_the_model(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    phrase = (MOVING, MOVING, MOVING)
    late = _bar((0, Q // 2), (Q // 2, Q // 2), (Q, Q // 2), (3 * Q // 2, Q // 2), (2 * Q, Q))
    tunes = [Melody(Key(0), 100.0, (*phrase, DOWNBEAT_CADENCE, *phrase, HELD))] * 2
    tunes += [Melody(Key(0), 100.0, (*phrase, late, *phrase, HELD))] * 2
    tunes += [Melody(Key(0), 100.0, (*phrase, _bar((0, Q), (Q, 2 * Q)), *phrase, HELD))]
    # beats 0 and 2 have two phrases each, beat 1 one: below the minimum of 2
    assert measure_upbeats(tunes, minimum=2) == {(3, 4): (1.0, -1.0, 0.0)}
    monkeypatch.setitem(UPBEAT_SHARES, (3, 4), (1.0, -1.0, 0.0))
    assert draw_upbeat(WALTZ, 1, random.Random(0)) is None
    assert draw_upbeat(WALTZ, 2, random.Random(0)) is False


REEL = Meter(2, 2)


def test_a_cadence_tone_is_short_part_or_held_against_its_beat() -> None:
    half = 2 * Q  # a 2/2 beat
    assert hold_of(Note(0, 60, Q // 2), REEL) == HOLD_SHORT  # a running eighth
    assert hold_of(Note(0, 60, Q), REEL) == HOLD_PART
    assert hold_of(Note(0, 60, half), REEL) == HOLD_BEAT
    assert hold_of(Note(0, 60, Q), WALTZ) == HOLD_BEAT
    assert hold_of(Note(0, 60, 2 * Q), WALTZ) == HOLD_LONG


def test_holds_are_measured_per_meter_period_half_and_beat() -> None:
    running = Bar(REEL, tuple(Note(i * Q // 2, 60, Q // 2) for i in range(8)))
    held = Bar(REEL, (Note(0, 60, 2 * Q), Note(2 * Q, 62, 2 * Q)))
    closing = Bar(REEL, (Note(0, 60, 4 * Q),))  # the tune's last bar: not counted
    tunes = [Melody(Key(0), 100.0, (running,) * 7 + (held, closing))] * 3
    tunes += [Melody(Key(0), 100.0, (running,) * 3 + (held,) + (running,) * 3 + (closing,))]
    table = measure_cadence_holds(tunes, minimum=3)
    assert table[(2, 2, False, True)] == ((0.75, 0.0, 0.25, 0.0),)
    assert table[(2, 2, True, True)] == ((0.0, 0.0, 1.0, 0.0),)
    assert measure_cadence_holds(tunes, minimum=5) == {}
    ringing = Bar(REEL, (Note(0, 60, 4 * Q),))  # held to the bar line: it does not lead on
    tunes = [Melody(Key(0), 100.0, (running,) * 3 + (ringing,) + (running,) * 4)] * 3
    assert measure_cadence_holds(tunes, minimum=3) == {(2, 2, False, False): ((0, 0, 0, 1.0),)}


def test_the_hold_draw_follows_the_corpus() -> None:
    draws = [draw_cadence_hold(REEL, 0, False, True, random.Random(s)) for s in range(2000)]
    short, part, *_ = CADENCE_HOLDS[(2, 2, False, True)][0]
    assert abs(draws.count(HOLD_SHORT) / len(draws) - short) < 0.04
    assert abs(draws.count(HOLD_PART) / len(draws) - part) < 0.04
    assert set(draws) <= {HOLD_SHORT, HOLD_PART, HOLD_BEAT}  # a reel holds no two beats
    for leads in (True, False):
        waltz = [draw_cadence_hold(WALTZ, 0, False, leads, random.Random(s)) for s in range(2000)]
        long = CADENCE_HOLDS[(3, 4, False, leads)][0][HOLD_LONG]
        assert abs(waltz.count(HOLD_LONG) / 2000 - long) < 0.04
    assert draw_cadence_hold(Meter(5, 4), 0, False, True, random.Random(0)) == -1  # unmeasured
    assert draw_cadence_hold(REEL, 7, True, True, random.Random(0)) == -1  # no such beat
    for rows in CADENCE_HOLDS.values():
        assert all(abs(sum(row) - 1) < 0.01 for row in rows if row[0] >= 0)


def test_breaths_are_measured_as_a_tunes_habit() -> None:
    breathing = _bar((0, Q), (2 * Q, Q))  # a quarter, a rest, the upbeat
    at_once = _bar((0, Q), (Q, Q), (2 * Q, Q))
    assert breathes(breathing, WALTZ) and not breathes(at_once, WALTZ)
    assert not breathes(_bar((0, 3 * Q)), WALTZ)  # nothing follows

    def tune(*ends: Bar) -> tuple[str, Melody]:  # phrase ends at bars 4 and 8 of 12
        bars = (MOVING,) * 3 + (ends[0],) + (MOVING,) * 3 + (ends[1],) + (MOVING,) * 4
        return "folk", Melody(Key(0), 100.0, bars)

    tunes = [
        tune(at_once, at_once),
        tune(breathing, breathing),
        tune(breathing, at_once),
        tune(at_once, breathing),
        tune(_bar((0, 3 * Q)), breathing),  # one breath end only: no habit to count
    ]
    habits, shares = measure_breaths(tunes, minimum=2)
    assert habits == {("folk", 0, 0): (0.25, 0.5, 0.25), ("folk", 3, 4): (0.25, 0.5, 0.25)}
    assert shares == {(3, 4): (-1.0, -1.0, 0.5, -1.0)}  # of the tunes that sometimes breathe


def test_a_piece_draws_its_breath_habit_once_then_its_phrases_by_it() -> None:
    habits = [draw_breath_habit("folk", WALTZ, random.Random(seed)) for seed in range(2000)]
    for habit, share in enumerate(BREATH_HABITS[("folk", 3, 4)]):
        assert abs(habits.count(habit) / len(habits) - share) < 0.04
    chorale = [draw_breath_habit("chorale", WALTZ, random.Random(seed)) for seed in range(2000)]
    assert abs(chorale.count(BREATH_NEVER) / 2000 - BREATH_HABITS[("chorale", 0, 0)][0]) < 0.04
    assert draw_breath_habit("jazz", WALTZ, random.Random(0)) == -1  # no such style measured

    assert draw_breath(BREATH_NEVER, WALTZ, HOLD_LONG, random.Random(0)) == 0
    assert draw_breath(BREATH_ALWAYS, WALTZ, HOLD_BEAT, random.Random(0)) == 1
    draws = [draw_breath(BREATH_SOMETIMES, WALTZ, HOLD_BEAT, random.Random(s)) for s in range(2000)]
    assert abs(sum(draws) / len(draws) - BREATH_SHARES[(3, 4)][HOLD_BEAT]) < 0.04
    assert draw_breath(BREATH_ALWAYS, WALTZ, HOLD_PART, random.Random(0)) == -1  # under a beat
    assert draw_breath(-1, WALTZ, HOLD_BEAT, random.Random(0)) == -1  # no habit
    assert draw_breath(BREATH_SOMETIMES, Meter(2, 2), HOLD_BEAT, random.Random(0)) == -1
