"""How composed pieces open: a pickup as often as the corpus's tunes of the style and meter."""

from __future__ import annotations

import random

import pytest

from cantus.melody.openings import (
    OVERALL_PICKUP_SHARE,
    PICKUP_ONSETS,
    PICKUP_SHARES,
    draw_opening,
    draw_pickup,
    draw_pickup_onset,
    measure_openings,
    pickup_share,
)
from cantus.music.form import Treatment, plan_form
from cantus.music.notes import Key, Meter
from cantus.music.styles import Energy
from cantus.music.transcription import GRID_TICKS

METERS = [Meter(2, 4), Meter(3, 4), Meter(4, 4), Meter(6, 8), Meter(2, 2), Meter(5, 4)]


@pytest.mark.parametrize(("style", "meter"), [("celtic", Meter(6, 8)), ("folk", Meter(2, 4))])
def test_pieces_open_with_a_pickup_as_often_as_the_corpus(style, meter):
    rng = random.Random(0)
    drawn = sum(draw_pickup(style, meter, rng) for _ in range(4000)) / 4000
    assert drawn == pytest.approx(pickup_share(style, meter), abs=0.03)
    assert pickup_share(style, meter) == PICKUP_SHARES[(style, meter.numerator, meter.denominator)]


def test_a_style_and_meter_the_corpus_lacks_takes_the_overall_share():
    assert pickup_share("chorale", Meter(6, 8)) == OVERALL_PICKUP_SHARE


@pytest.mark.parametrize("meter", METERS)
def test_a_pickup_starts_after_the_downbeat_inside_the_bar(meter):
    rng = random.Random(1)
    steps = meter.bar_ticks // GRID_TICKS
    onsets = {draw_pickup_onset(meter, rng) for _ in range(300)}
    assert all(0 < onset < steps for onset in onsets)
    known = PICKUP_ONSETS.get((meter.numerator, meter.denominator))
    if known is None:  # the last beat
        assert onsets == {(meter.bar_ticks - meter.beat_ticks) // GRID_TICKS}
    else:
        assert onsets <= set(known)


def test_the_opening_is_the_seeds():
    plan = plan_form("AABA", bars=16, key=Key(0), energy=Energy.MID)
    openings = [draw_opening(plan, "celtic", Meter(4, 4), seed) for seed in range(40)]
    assert openings == [draw_opening(plan, "celtic", Meter(4, 4), seed) for seed in range(40)]
    with_one = [p for p in openings if p.pickup_bars]
    assert 20 <= len(with_one) < 40  # celtic 4/4: 86 %
    for opened in with_one:
        assert opened.sections[0].treatment is Treatment.PICKUP
        assert opened.total_bars == 17


def test_measuring_openings_counts_styles_meters_and_onsets():
    tunes = [("folk", Meter(4, 4), 12)] * 30 + [("folk", Meter(4, 4), 0)] * 10
    tunes += [("celtic", Meter(6, 8), 10)] * 5  # too few to hold a share
    shares, onsets, overall = measure_openings(tunes)
    assert shares == {("folk", 4, 4): 0.75}
    assert onsets == {(4, 4): {12: 1.0}}
    assert overall == pytest.approx(35 / 45, abs=1e-3)
