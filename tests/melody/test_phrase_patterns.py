"""A short piece's form drawn from the corpus's phrase patterns (``phrase_patterns``)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from cantus.melody.phrase_patterns import (
    PATTERN_BARS,
    PATTERN_TABLE,
    draw_form,
    draw_pattern,
    measure_patterns,
    pattern_shares,
)
from cantus.music.form import AUTO, PHRASE_BARS, Cadence, plan_form, plan_pattern
from cantus.music.notes import Key, Meter
from cantus.music.styles import Energy

JIG = Meter(6, 8)


def _draw(bars: int, seed: int, style: str = "celtic", meter: Meter = JIG, form: str = AUTO):
    return draw_form(
        form, bars=bars, key=Key(2), energy=Energy.MID, style=style, meter=meter, seed=seed
    )


@pytest.mark.parametrize("bars", PATTERN_BARS)
def test_the_table_holds_plannable_patterns_of_every_drawn_length(bars: int) -> None:
    overall = PATTERN_TABLE[str(bars)]
    assert 0.95 < sum(overall.values()) <= 1.0001  # the tail left out is small
    for key, shares in PATTERN_TABLE.items():
        if key.split()[-1] != str(bars):
            continue
        for pattern in shares:
            assert len(pattern.split()) * PHRASE_BARS == bars
            plan = plan_pattern(pattern, key=Key(0), energy=Energy.MID)
            assert plan.total_bars == bars


def test_a_jig_doubles_its_strains_where_a_folk_song_runs_on() -> None:
    jig = pattern_shares("celtic", JIG, 16)
    song = pattern_shares("folk", Meter(2, 4), 16)
    assert jig["A A~ B B~"] > 0.2 > song.get("A A~ B B~", 0)
    assert song["A B C D"] > 0.4 > jig["A B C D"]
    # a style and meter the corpus has too few tunes of: every 16-bar tune's mix
    assert pattern_shares("chorale", Meter(9, 8), 16) == PATTERN_TABLE["16"]
    assert pattern_shares("celtic", JIG, 24) == {}


def test_patterns_are_drawn_as_often_as_the_corpus_shapes_its_tunes() -> None:
    rng = random.Random(5)
    drawn = Counter(draw_pattern("celtic", JIG, 16, rng) for _ in range(4000))
    shares = pattern_shares("celtic", JIG, 16)
    total = sum(shares.values())
    for pattern in ("A A~ B B~", "A A~ B C", "A B C D"):
        assert drawn[pattern] / 4000 == pytest.approx(shares[pattern] / total, abs=0.03)
    assert draw_pattern("celtic", JIG, 28, rng) is None


def test_an_auto_form_is_drawn_per_seed_and_the_same_for_the_same_seed() -> None:
    plans = [_draw(16, seed) for seed in range(60)]
    assert [_draw(16, seed) for seed in range(60)] == plans
    names = Counter(plan.name for plan in plans)
    assert len(names) >= 4 and "AA'BB'" in names  # not one form for every piece
    assert all(plan.total_bars == 16 for plan in plans)


def test_a_named_form_or_a_length_without_patterns_plans_as_before() -> None:
    aaba = plan_form("AABA", bars=16, key=Key(2), energy=Energy.MID)
    assert _draw(16, 3, form="AABA") == aaba
    assert _draw(32, 3) == plan_form(AUTO, bars=32, key=Key(2), energy=Energy.MID)


def test_measuring_groups_tunes_by_style_meter_and_length() -> None:
    reel = ("celtic", Meter(2, 2), {8: "A A~", 16: "A A~ B B~"})
    song = ("folk", Meter(2, 4), {8: "A B", 16: "A B C D"})
    odd = ("folk", Meter(2, 4), {8: "A A=", 16: "A A= B C"})
    table = measure_patterns([reel] * 3 + [song] * 2 + [odd], minimum=3)
    assert table["celtic 2/2 16"] == {"A A~ B B~": 1.0}
    assert table["folk 2/4 8"] == {"A B": pytest.approx(0.667, abs=0.001)}  # seen once: out
    assert table["16"]["A A~ B B~"] == 0.5
    assert "folk 3/4 16" not in table


def test_a_piece_past_its_window_draws_the_windows_form_and_goes_on_with_new_phrases() -> None:
    for seed in range(20):
        window = _draw(16, seed)
        longer = draw_form(
            AUTO,
            bars=20,
            key=Key(2),
            energy=Energy.MID,
            style="celtic",
            meter=JIG,
            seed=seed,
            window=16,
        )
        labels = [s.label for s in longer.sections]
        assert labels[:4] == [s.label for s in window.sections] and len(labels) == 5
        assert labels[4] not in {label.rstrip("'") for label in labels[:4]}  # new material
        assert longer.sections[-1].cadence is Cadence.AUTHENTIC
