"""Phrases chosen in key (``cantus.melody.key_choice``): the key clarity of a melody and the
choosers that keep a candidate in the asked key."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from cantus.melody.composition import FormComposer, PhraseRequest, collect
from cantus.melody.controls import Controls
from cantus.melody.decoding import HALF_CADENCE_STEPS
from cantus.melody.infill import CANDIDATE_SEED_STRIDE, phrase_chooser
from cantus.melody.key_choice import (
    ASKED_KEY_FLOORS,
    FALLBACK_GUIDANCE,
    FLOOR_BARS,
    KEY_CLARITY_FLOORS,
    candidates_in_key,
    clarity_floor,
    first_bars,
    hammers,
    key_chooser,
    key_clarity,
    key_floors,
    leaps_too_wide,
    measure_floors,
    unlike_any_tune,
)
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.form import plan_form
from cantus.music.key_finding import pitch_class_durations
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note
from cantus.music.styles import Energy, Style

METER = Meter(4, 4)
C_MAJOR = Key(0, Mode.MAJOR)
A_MINOR = Key(9, Mode.MINOR)
CONTROLS = Controls(C_MAJOR, METER, 100.0, Style.FOLK, Energy.MID)


def _bar(*pitches: int) -> Bar:
    return Bar(METER, tuple(Note(q * 480, p, 480, 90) for q, p in enumerate(pitches)))


C_TUNE = [_bar(60, 64, 67, 64), _bar(65, 62, 59, 62), _bar(60, 64, 67, 72), _bar(67, 65, 64, 60)]
A_TUNE = [_bar(69, 72, 76, 72), _bar(74, 71, 68, 71), _bar(69, 72, 76, 81), _bar(76, 71, 68, 69)]
LOOSE_C_TUNE = [_bar(60, 62, 64, 65), _bar(67, 69, 71, 72), _bar(71, 69, 67, 65)]
F_SHARP_TUNE = [_bar(66, 70, 73, 70), _bar(71, 68, 65, 68), _bar(66, 70, 73, 78)]
# opens on A minor's triad and settles on C's scale: as near C major as A minor
AMBIGUOUS_C_OPENING = [
    _bar(69, 72, 76, 72),
    _bar(74, 72, 71, 69),
    _bar(67, 65, 64, 62),
    _bar(67, 67, 69, 69),
]


def test_pitch_class_weights_count_sounding_time() -> None:
    weights = pitch_class_durations(
        Bar(METER, (Note(0, 60, 1440, 90), Note(1440, 72, 480, 90))).notes
    )
    assert weights[0] == 1920 and sum(weights) == 1920


def test_a_tune_is_clearest_in_its_own_key() -> None:
    assert key_clarity(C_TUNE, C_MAJOR) > 0  # C major is the likeliest reading
    assert key_clarity(C_TUNE, Key(6, Mode.MAJOR)) < -0.5
    assert key_clarity(A_TUNE, A_MINOR) > 0  # the G# tells A minor from C major
    assert key_clarity(A_TUNE, C_MAJOR) < 0
    assert key_clarity([], C_MAJOR) == -1.0
    assert key_clarity([_bar(60, 60, 72, 60)], C_MAJOR) == -1.0  # one pitch class: no reading


def _request(seed: int = 11) -> PhraseRequest:
    return PhraseRequest(
        first_bar=4,
        n_bars=3,
        controls=CONTROLS,
        context=(),
        cadence_steps=HALF_CADENCE_STEPS,
        seed=seed,
    )


def test_the_chooser_keeps_the_candidate_that_keeps_the_key() -> None:
    seeds: list[int] = []

    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        seeds.append(request.seed)
        # the plain decode (candidate 0) wanders to F# major, the second stays in C
        tune = F_SHARP_TUNE if request.seed == 11 else C_TUNE
        for bar in tune[: request.n_bars]:
            yield bar

    chosen = asyncio.run(key_chooser(decode, 2)(_request(), (), C_TUNE[:1]))
    assert chosen == C_TUNE[:3]
    assert seeds == [11, 11 + CANDIDATE_SEED_STRIDE]


def test_the_first_candidate_in_key_is_kept_even_where_a_later_one_is_clearer() -> None:
    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        # candidate 0 leaves C major, 1 runs up and down its scale (barely C major: every
        # degree alike), 2 outlines its tonic triad
        tunes = {11: F_SHARP_TUNE, 11 + CANDIDATE_SEED_STRIDE: LOOSE_C_TUNE}
        for bar in tunes.get(request.seed, C_TUNE)[: request.n_bars]:
            yield bar

    assert 0 < key_clarity(LOOSE_C_TUNE, C_MAJOR) < key_clarity(C_TUNE[:3], C_MAJOR)
    assert asyncio.run(key_chooser(decode, 3)(_request(), (), [])) == LOOSE_C_TUNE


def test_a_candidate_cut_short_is_not_chosen() -> None:
    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        tune = C_TUNE[:1] if request.seed == 11 else F_SHARP_TUNE  # the in-key one stops early
        for bar in tune[: request.n_bars]:
            yield bar

    assert asyncio.run(key_chooser(decode, 2)(_request(), (), [])) == F_SHARP_TUNE


def test_the_composer_chooses_every_decoded_phrase_in_its_key_area() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    asked: list[tuple[int, int]] = []

    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        for i in range(request.n_bars):
            yield C_TUNE[i % 4]

    async def choose(request: PhraseRequest, after, before) -> list[Bar]:  # type: ignore[no-untyped-def]
        assert after == ()
        asked.append((request.first_bar, len(before)))
        # a phrase ending in a short last note: the piece's last one is held to the bar line
        return [_bar(60, 62, 64, 67)] * request.n_bars

    composer = FormComposer(plan, CONTROLS, seed=7, choose_in_key=choose, echoes=False)
    bars = asyncio.run(collect(composer, [], decode))
    assert len(bars) == 16
    # A: 0-3, A' decodes its cadence bar 7, B 8-11, A'' its bar 15; each phrase is heard
    # with every bar of its key area before it (a four-bar B stays home)
    assert asked == [(0, 0), (7, 7), (8, 8), (15, 15)]
    assert bars[15].notes[-1].duration == METER.bar_ticks - 3 * 480
    assert bars[11].notes[-1].duration == 480  # the tune goes on after B


def test_candidates_in_key_are_those_that_keep_the_key_area_in_key_or_the_clearest() -> None:
    assert candidates_in_key([F_SHARP_TUNE, LOOSE_C_TUNE, C_TUNE[:3]], [], C_MAJOR) == [1, 2]
    # after four bars of C major, three of F# major leave the key area in C major
    assert candidates_in_key([F_SHARP_TUNE, C_TUNE[:3]], C_TUNE, C_MAJOR) == [0, 1]
    assert candidates_in_key([A_TUNE, F_SHARP_TUNE], [], Key(6, Mode.MAJOR)) == [1]
    assert candidates_in_key([F_SHARP_TUNE, A_TUNE], [], C_MAJOR) == [1]  # neither: clearest


def test_a_phrase_leading_into_a_return_is_the_likeliest_of_those_in_key() -> None:
    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        tune = F_SHARP_TUNE if request.seed == 11 else C_TUNE  # candidate 0 leaves the key
        for bar in tune[: request.n_bars]:
            yield bar

    async def score(sequences, starts) -> list[float]:  # type: ignore[no-untyped-def]
        return [0.0] * len(sequences) if len(sequences) < 3 else [5.0, 0.0, 0.0]

    right = C_TUNE[:1]
    unchecked = phrase_chooser(decode, score, MelodyTokenizer(), 3)
    assert asyncio.run(unchecked(_request(), right, C_TUNE[:1])) == F_SHARP_TUNE
    checked = phrase_chooser(decode, score, MelodyTokenizer(), 3, candidates_in_key)
    assert asyncio.run(checked(_request(), right, C_TUNE[:1])) == C_TUNE[:3]


def test_a_phrase_that_hammers_one_note_is_passed_over_while_another_is_in_key() -> None:
    hammered = [
        _bar(67, 67, 67, 64),
        _bar(67, 67, 67, 60),
        _bar(67, 67, 67, 62),
        _bar(60, 64, 67, 60),
    ]
    assert hammers(hammered)
    assert not hammers(C_TUNE) and not hammers([_bar(60, 60, 60, 60)])  # a cadence bar never
    assert not hammers([_bar(60, 60, 64, 67), *C_TUNE[1:]])  # one repeat is a tune's own
    assert key_clarity(hammered, C_MAJOR) > 0
    assert candidates_in_key([hammered, C_TUNE, LOOSE_C_TUNE], [], C_MAJOR) == [1, 2]
    # where every candidate in key hammers, the key still comes first
    assert candidates_in_key([F_SHARP_TUNE, hammered], [], C_MAJOR) == [1]


def test_where_no_candidate_keeps_the_key_the_phrase_is_decoded_once_more_with_guidance() -> None:
    asked: list[tuple[int, float | None]] = []

    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        asked.append((request.seed, request.guidance))
        tune = C_TUNE if request.guidance == FALLBACK_GUIDANCE else F_SHARP_TUNE
        for bar in tune[: request.n_bars]:
            yield bar

    assert asyncio.run(key_chooser(decode, 2)(_request(), (), [])) == C_TUNE[:3]
    # the third seed of the phrase, guided; the two unguided candidates before it
    assert asked == [
        (11, None),
        (11 + CANDIDATE_SEED_STRIDE, None),
        (11 + 2 * CANDIDATE_SEED_STRIDE, 2.0),
    ]
    asked.clear()
    assert (
        asyncio.run(key_chooser(decode, 2, fallback_guidance=1.0)(_request(), (), []))
        == F_SHARP_TUNE
    )
    assert len(asked) == 2


def test_a_request_with_its_own_guidance_overrides_the_services() -> None:
    base = SamplingParams(guidance=1.0)
    assert _request().sampling(base).guidance == 1.0
    assert dataclasses.replace(_request(), guidance=2.0).sampling(base).guidance == 2.0


def test_a_leap_of_more_than_an_octave_is_passed_over_while_another_candidate_is_in_key() -> None:
    leaping = [_bar(60, 67, 79, 72), *C_TUNE[1:]]  # G4 to G5 is an octave: a tune's own
    assert not leaps_too_wide(leaping) and not unlike_any_tune(leaping)
    leaping = [_bar(60, 64, 67, 81), _bar(65, 62, 59, 62), *C_TUNE[2:]]  # G4 to A5
    assert leaps_too_wide(leaping) and unlike_any_tune(leaping)
    assert key_clarity(leaping, C_MAJOR) > 0
    assert candidates_in_key([leaping, LOOSE_C_TUNE], [], C_MAJOR) == [1]


def test_the_clarity_floor_is_the_one_measured_at_the_longest_length_within_the_key_area() -> None:
    major = KEY_CLARITY_FLOORS[Mode.MAJOR]
    assert [clarity_floor(n, Mode.MAJOR) for n in (1, 4, 7, 8, 12, 15, 16, 40)] == [
        major[0],
        major[0],
        major[0],
        major[1],
        major[2],
        major[2],
        major[3],
        major[3],
    ]
    assert clarity_floor(4, Mode.MINOR, ASKED_KEY_FLOORS) == 0.0
    assert key_floors(True) is KEY_CLARITY_FLOORS and key_floors(False) is ASKED_KEY_FLOORS


def test_the_floors_ask_less_of_an_opening_than_of_a_whole_strain_and_never_more_than_the_key() -> (
    None
):
    for mode in Mode:
        floors = KEY_CLARITY_FLOORS[mode]
        assert len(floors) == len(FLOOR_BARS)
        assert list(floors) == sorted(floors)
        assert floors[0] < 0 and floors[-1] == 0.0


def test_an_opening_as_clear_as_real_tunes_openings_is_in_key_without_reading_in_it() -> None:
    clarity = key_clarity(AMBIGUOUS_C_OPENING, C_MAJOR)
    assert KEY_CLARITY_FLOORS[Mode.MAJOR][0] < clarity < 0
    candidates = [AMBIGUOUS_C_OPENING, C_TUNE]
    assert candidates_in_key(candidates, [], C_MAJOR) == [0, 1]
    assert candidates_in_key(candidates, [], C_MAJOR, ASKED_KEY_FLOORS) == [1]
    # the same four bars closing an eight-bar key area must read in C major by then
    assert key_clarity([*AMBIGUOUS_C_OPENING, *AMBIGUOUS_C_OPENING], C_MAJOR) < (
        clarity_floor(8, Mode.MAJOR)
    )
    assert candidates_in_key(candidates, AMBIGUOUS_C_OPENING, C_MAJOR) == [1]


def test_the_chooser_keeps_an_opening_as_clear_as_real_tunes_unless_asked_to_read_in_key() -> None:
    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        tune = AMBIGUOUS_C_OPENING if request.seed == 11 else C_TUNE
        for bar in tune[: request.n_bars]:
            yield bar

    request = dataclasses.replace(_request(), first_bar=0, n_bars=4)
    assert asyncio.run(key_chooser(decode, 2)(request, (), [])) == AMBIGUOUS_C_OPENING
    strict = key_chooser(decode, 2, floors=ASKED_KEY_FLOORS)
    assert asyncio.run(strict(request, (), [])) == C_TUNE


def test_the_floors_are_a_percentile_of_real_openings_capped_at_reading_in_key() -> None:
    pickup = Bar(METER, (Note(3 * 480, 67, 480, 90),))
    ambiguous = Melody(C_MAJOR, 100.0, (pickup, *AMBIGUOUS_C_OPENING))
    clear = Melody(C_MAJOR, 100.0, tuple(C_TUNE * 2))
    assert first_bars(ambiguous, 4) == AMBIGUOUS_C_OPENING  # the pickup bar left out
    floors = measure_floors([ambiguous, clear, clear], {Mode.MAJOR: 0, Mode.MINOR: 20})
    opening = round(key_clarity(AMBIGUOUS_C_OPENING, C_MAJOR), 3)
    # four bars: the least clear opening; eight: only the clear tunes are that long, capped
    # at 0; no tune of twelve bars or in minor: 0
    assert floors == {Mode.MAJOR: (opening, 0.0, 0.0, 0.0), Mode.MINOR: (0.0,) * 4}
