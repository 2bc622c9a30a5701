"""A contrasting section's register (``cantus.melody.register``): the corpus statistic, the
draw, which sections get an aim, and the choosers that keep the candidate nearest it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from cantus.melody.composition import FormComposer, PhraseRequest, collect
from cantus.melody.controls import Controls
from cantus.melody.decoding import HALF_CADENCE_STEPS
from cantus.melody.infill import CANDIDATE_SEED_STRIDE, phrase_chooser
from cantus.melody.key_choice import candidates_in_key, key_chooser
from cantus.melody.register import (
    CONTRAST_LIFT_QUANTILES,
    contrasting_sections,
    draw_lift,
    lift_quantiles,
    mean_pitch,
    nearest_register,
    register_pitch_range,
    strain_lift,
    theme_sections,
)
from cantus.melody.sampling import DEFAULT_SAMPLING
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.form import plan_form, plan_pattern
from cantus.music.notes import Bar, Key, Melody, Meter, Mode, Note
from cantus.music.styles import Energy, Style

METER = Meter(4, 4)
C_MAJOR = Key(0, Mode.MAJOR)
CONTROLS = Controls(C_MAJOR, METER, 100.0, Style.FOLK, Energy.MID)


def _bar(*pitches: int, onset: int = 0) -> Bar:
    return Bar(METER, tuple(Note(onset + q * 480, p, 480, 90) for q, p in enumerate(pitches)))


LOW = [_bar(60, 62, 64, 62), _bar(64, 65, 64, 62), _bar(60, 64, 62, 67)]  # mean 63
MIDDLE = [_bar(64, 65, 67, 65), _bar(67, 69, 67, 65), _bar(64, 67, 65, 72)]
HIGH = [_bar(72, 74, 76, 74), _bar(76, 77, 76, 74), _bar(72, 76, 74, 79)]


def test_the_strain_lift_is_the_second_strains_first_phrase_against_the_first() -> None:
    first = [_bar(60, 62, 64, 65)] * 8  # mean 62.75
    second = [_bar(67, 69, 71, 72)] * 4 + [_bar(48, 48, 48, 48)] * 4  # only bars 9-12 count
    tune = Melody(C_MAJOR, 100.0, tuple(first + second))
    assert strain_lift(tune) == 69.75 - 62.75
    # a pickup bar (padded with a rest before its note) is left out: the strains start after it
    pickup = _bar(55, onset=3 * 480)
    assert strain_lift(Melody(C_MAJOR, 100.0, (pickup, *first, *second))) == strain_lift(tune)
    assert strain_lift(Melody(C_MAJOR, 100.0, tuple(first + second[:7]))) is None  # too short


def test_the_served_quantiles_climb_as_the_corpus_does() -> None:
    assert list(CONTRAST_LIFT_QUANTILES) == sorted(CONTRAST_LIFT_QUANTILES)
    assert len(CONTRAST_LIFT_QUANTILES) == 21
    assert 1.0 < CONTRAST_LIFT_QUANTILES[10] < 2.0  # the median second strain climbs
    assert lift_quantiles([0.0, 1.0, 2.0, 3.0, 4.0], steps=4) == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert lift_quantiles([0.0, 10.0], steps=2) == (0.0, 5.0, 10.0)


@given(st.integers(0, 2**32 - 1))
def test_a_drawn_lift_lies_inside_the_quantiles(seed: int) -> None:
    lift = draw_lift(random.Random(seed))
    assert CONTRAST_LIFT_QUANTILES[0] <= lift <= CONTRAST_LIFT_QUANTILES[-1]


def test_draws_follow_the_distribution_they_are_drawn_from() -> None:
    rng = random.Random(3)
    draws = sorted(draw_lift(rng) for _ in range(4000))
    assert abs(draws[2000] - CONTRAST_LIFT_QUANTILES[10]) < 0.25  # the median
    assert abs(draws[400] - CONTRAST_LIFT_QUANTILES[2]) < 0.4  # the 10th percentile


def test_contrasting_sections_are_the_new_ones_after_the_theme() -> None:
    aaba = plan_form("AABA", bars=32, key=C_MAJOR, energy=Energy.MID)
    assert [aaba.sections[i].label for i in sorted(contrasting_sections(aaba))] == ["B"]
    assert [aaba.sections[i].label for i in sorted(theme_sections(aaba))] == ["A", "A'", "A''"]
    song = plan_form("verse-chorus", bars=64, key=C_MAJOR, energy=Energy.MID)
    labels = [song.sections[i].label for i in sorted(contrasting_sections(song))]
    assert labels == ["chorus", "bridge"]  # not the intro, the theme (verse) or the outro
    assert {song.sections[i].label for i in theme_sections(song)} == {"verse", "verse'"}
    assert (
        contrasting_sections(plan_form("through", bars=8, key=C_MAJOR, energy=Energy.MID)) == set()
    )


def test_a_new_phrase_inside_the_first_strain_answers_the_theme() -> None:
    through = plan_pattern("A B C D", key=C_MAJOR, energy=Energy.MID)
    assert [through.sections[i].label for i in sorted(contrasting_sections(through))] == ["C", "D"]
    assert [through.sections[i].label for i in sorted(theme_sections(through))] == ["A", "B"]
    doubled = plan_pattern("A A~ B B~", key=C_MAJOR, energy=Energy.MID)
    assert [doubled.sections[i].label for i in sorted(contrasting_sections(doubled))] == ["B"]
    assert [doubled.sections[i].label for i in sorted(theme_sections(doubled))] == ["A", "A'"]


def test_nearest_register_keeps_those_within_the_tolerance_nearest_first() -> None:
    candidates = [LOW, MIDDLE, HIGH, []]
    high = mean_pitch(HIGH)
    assert high is not None
    assert nearest_register(candidates, [0, 1, 2, 3], high, 0.0) == [2]
    assert nearest_register(candidates, [0, 1, 2, 3], high, 100.0) == [2, 1, 0, 3][:3]
    assert nearest_register(candidates, [0, 1], high, 0.0) == [1]  # only those asked about
    assert nearest_register(candidates, [], high, 1.0) == []


def _request(aim: float | None, seed: int = 11) -> PhraseRequest:
    return PhraseRequest(
        first_bar=8,
        n_bars=3,
        controls=CONTROLS,
        context=(),
        cadence_steps=HALF_CADENCE_STEPS,
        seed=seed,
        register_aim=aim,
    )


DECODED: list[int] = []


async def _three_registers(request: PhraseRequest) -> AsyncIterator[Bar]:
    """Candidate k (seed 11 + k strides) is LOW, MIDDLE, HIGH, LOW, … (k mod 3)."""
    DECODED.append(request.seed)
    candidate = (request.seed - 11) // CANDIDATE_SEED_STRIDE
    for bar in (LOW, MIDDLE, HIGH)[candidate % 3][: request.n_bars]:
        yield bar


def test_the_key_chooser_keeps_the_fitting_candidate_nearest_the_aim() -> None:
    choose = key_chooser(_three_registers, 3)
    DECODED.clear()
    assert asyncio.run(choose(_request(None), (), [])) == LOW  # no aim: the first in key
    assert len(DECODED) == 3
    DECODED.clear()
    assert asyncio.run(choose(_request(75.0), (), [])) == HIGH
    assert len(DECODED) == 3  # no more decoding than without an aim
    assert asyncio.run(choose(_request(66.0), (), [])) == MIDDLE


def test_a_phrase_into_a_return_is_the_likeliest_lead_of_those_near_the_aim() -> None:
    async def likes_low(sequences, starts) -> list[float]:  # type: ignore[no-untyped-def]
        return [5.0] + [0.0] * (len(sequences) - 1)

    chooser = phrase_chooser(_three_registers, likes_low, MelodyTokenizer(), 3, candidates_in_key)
    assert asyncio.run(chooser(_request(None), LOW[:1], [])) == LOW
    # the aim narrows the choice to the high candidate, whatever the return's likelihood
    assert asyncio.run(chooser(_request(76.0), LOW[:1], [])) == HIGH
    # within the tolerance of the nearest, the return's likelihood still decides
    assert asyncio.run(chooser(_request(64.4), LOW[:1], [])) == LOW


def test_the_composer_aims_the_b_of_aaba_from_its_a_and_nothing_else() -> None:
    plan = plan_form("AABA", bars=16, key=C_MAJOR, energy=Energy.MID)
    aims: dict[int, float | None] = {}
    ranges: dict[int, tuple[int, int]] = {}

    async def decode(request: PhraseRequest) -> AsyncIterator[Bar]:
        aims[request.first_bar] = request.register_aim
        ranges[request.first_bar] = request.sampling(DEFAULT_SAMPLING).pitch_range
        for _ in range(request.n_bars):
            yield _bar(60, 62, 64, 62)  # mean 62

    composer = FormComposer(plan, CONTROLS, seed=7)
    bars = asyncio.run(collect(composer, [], decode))
    assert len(bars) == 16
    assert aims[0] is None and aims[15] is None  # the theme and its varied return
    # the theme keeps the service's pitch range; the B is decoded around its aim
    assert ranges[0] == ranges[15] == DEFAULT_SAMPLING.pitch_range
    lift = draw_lift(random.Random(7 * 1_000_003 + 900_001 * 9 + 2))
    b_aim = aims[8]
    assert b_aim is not None
    assert abs(b_aim - mean_pitch(bars[:8]) - lift) < 1e-9  # type: ignore[operator]
    assert ranges[8] == register_pitch_range(b_aim)
    # the same seed draws the same aim (a restarted service resumes the same B)
    again: dict[int, float | None] = {}

    async def decode_again(request: PhraseRequest) -> AsyncIterator[Bar]:
        again[request.first_bar] = request.register_aim
        async for bar in decode(request):
            yield bar

    asyncio.run(collect(FormComposer(plan, CONTROLS, seed=7), [], decode_again))
    assert again[8] == b_aim
    off = FormComposer(plan, CONTROLS, seed=7, register_contrast=False)
    aims.clear()
    asyncio.run(collect(off, [], decode))
    assert aims[8] is None
    # chosen near the aim, decoded over the whole range (as before session 26)
    unwindowed = FormComposer(plan, CONTROLS, seed=7, register_window=False)
    asyncio.run(collect(unwindowed, [], decode))
    assert aims[8] == b_aim and ranges[8] == DEFAULT_SAMPLING.pitch_range


def test_the_register_window_surrounds_the_aim_and_keeps_its_width_inside_the_range() -> None:
    assert register_pitch_range(66.4) == (61, 75)  # 5 below and 9 above the rounded aim
    assert register_pitch_range(66.6, window=(3, 4)) == (64, 71)
    # near the edges of the served range (48-88) the window moves whole, an octave and more
    assert register_pitch_range(86.0) == (74, 88)
    assert register_pitch_range(45.0) == (48, 62)
    assert register_pitch_range(70.0, bounds=(60, 64)) == (60, 64)  # a range narrower than it


@given(st.floats(20.0, 110.0))
def test_every_window_holds_every_pitch_class_inside_the_served_range(aim: float) -> None:
    low, high = register_pitch_range(aim)
    assert DEFAULT_SAMPLING.pitch_range[0] <= low <= high <= DEFAULT_SAMPLING.pitch_range[1]
    assert high - low >= 11
