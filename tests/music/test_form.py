"""Form plans: what every plan guarantees, the named forms' shapes, durations and errors."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cantus.music.form import (
    PHRASE_BARS,
    Cadence,
    FormPlan,
    KeyArea,
    Treatment,
    bars_for_duration,
    form_names,
    normalise_form_name,
    plan_form,
    plan_pattern,
    with_pickup,
)
from cantus.music.notes import Key, Meter, Mode, MusicError
from cantus.music.styles import Energy

KEYS = st.builds(Key, st.integers(0, 11), st.sampled_from(list(Mode)))


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(form_names()),
    bars=st.integers(1, 256),
    key=KEYS,
    energy=st.sampled_from(list(Energy)),
)
def test_every_plan_covers_its_bars_and_reuses_only_what_came_before(name, bars, key, energy):
    try:
        plan = plan_form(name, bars=bars, key=key, energy=energy)
    except MusicError as error:
        assert "cannot fit" in str(error) or "at least" in str(error)
        return
    assert plan.total_bars == bars
    assert plan.sections[0].first_bar == 0
    for previous, section in zip(plan.sections, plan.sections[1:], strict=False):
        assert section.first_bar == previous.end_bar
    for index, section in enumerate(plan.sections):
        if section.treatment is not Treatment.NEW:
            source = plan.sections[section.source]
            assert section.source < index and source.bars == section.bars
            assert source.treatment is Treatment.NEW
        assert section.key == section.key_area.key(key)
        ends = section.phrase_ends()
        assert ends[-1] == (section.end_bar - 1, section.cadence)
        assert all(section.first_bar <= end < section.end_bar for end, _ in ends)
    last = plan.sections[-1]
    assert (last.cadence, last.key_area) == (Cadence.AUTHENTIC, KeyArea.HOME)
    assert FormPlan.from_dict(plan.to_dict()) == plan


def test_sections_of_two_phrases_or_more_move_to_their_key_area():
    plan = plan_form("AABA", bars=32, key=Key(0), energy=Energy.MID)
    assert [(s.label, s.bars, s.key_area) for s in plan.sections] == [
        ("A", 8, KeyArea.HOME),
        ("A'", 8, KeyArea.HOME),
        ("B", 8, KeyArea.DOMINANT),
        ("A''", 8, KeyArea.HOME),
    ]
    assert plan.sections[2].key == Key(7)
    short = plan_form("rondo", bars=20, key=Key(0), energy=Energy.MID)
    assert {s.key_area for s in short.sections} == {KeyArea.HOME}


def test_the_default_sixteen_bars_are_aaba_in_four_bar_phrases():
    plan = plan_form("auto", bars=16, key=Key(0), energy=Energy.MID)
    assert plan.name == "AABA"
    assert [(s.label, s.bars, s.treatment) for s in plan.sections] == [
        ("A", 4, Treatment.NEW),
        ("A'", 4, Treatment.VARY),
        ("B", 4, Treatment.NEW),
        ("A''", 4, Treatment.VARY),
    ]
    # B, one phrase long, stays home (MIN_KEY_AREA_BARS), one step up in energy
    assert plan.sections[2].key == Key(0) and plan.sections[2].key_area is KeyArea.HOME
    assert plan.sections[2].energy is Energy.HIGH
    assert [plan.cadence_at(bar) for bar in (3, 7, 11, 15)] == [
        Cadence.HALF,
        Cadence.AUTHENTIC,
        Cadence.HALF,
        Cadence.AUTHENTIC,
    ]
    assert plan.cadence_at(5) is None


def test_a_five_minute_piece_is_a_verse_chorus_form_of_phrase_sections():
    bars = bars_for_duration(300, 128.0, Meter(4, 4))
    assert bars == 160
    plan = plan_form("auto", bars=bars, key=Key(9, Mode.MINOR), energy=Energy.LOW)
    assert plan.name == "verse-chorus"
    labels = plan.labels()
    assert labels[0] == "intro" and labels[-1] == "outro"
    assert "bridge" in labels and labels.count("chorus") == 1
    assert all(s.bars % PHRASE_BARS == 0 for s in plan.sections)
    decoded = sum(s.bars for s in plan.sections if s.treatment is Treatment.NEW)
    assert decoded < bars / 2  # most of a long piece is reused material


@pytest.mark.parametrize(
    ("name", "expected"),
    [("aaba", "AABA"), ("verse_chorus", "verse-chorus"), ("", "auto"), (" Rondo ", "rondo")],
)
def test_form_names_are_normalised(name, expected):
    assert normalise_form_name(name) == expected


def test_an_unknown_form_names_the_accepted_ones():
    with pytest.raises(MusicError, match=r"unknown form 'sonata'.*AABA"):
        normalise_form_name("sonata")


def test_durations_round_to_whole_phrases():
    assert bars_for_duration(30, 120.0, Meter(4, 4)) == 16  # 15 bars of 2 s -> 4 phrases
    assert bars_for_duration(1, 60.0, Meter(6, 8)) == PHRASE_BARS
    with pytest.raises(MusicError, match="duration"):
        bars_for_duration(0, 100.0, Meter(4, 4))


def test_a_pickup_bar_comes_before_the_plan_and_ends_no_phrase():
    plan = plan_form("AABA", bars=16, key=Key(0), energy=Energy.MID)
    opened = with_pickup(plan)
    assert (opened.total_bars, opened.pickup_bars, plan.pickup_bars) == (17, 1, 0)
    assert opened.labels() == ["pickup", *plan.labels()]
    assert [s.first_bar for s in opened.sections] == [0, 1, 5, 9, 13]
    assert [s.source for s in opened.sections[1:]] == [None, 1, None, 1]
    # the phrases end a bar later, as a written tune's with an anacrusis do
    assert opened.cadence_at(0) is None and opened.cadence_at(4) is Cadence.HALF
    assert opened.cadence_at(16) is Cadence.AUTHENTIC
    assert with_pickup(opened) == opened
    # as heard, the pickup bar is the first A's
    assert [opened.heard_section_index(bar) for bar in (0, 1, 5)] == [1, 1, 2]
    assert [opened.heard_first_bar(index) for index in (1, 2)] == [0, 5]
    assert FormPlan.from_dict(opened.to_dict()) == opened


def test_a_pickup_is_one_bar_at_the_start_of_a_plan():
    opened = with_pickup(plan_form("AABA", bars=16, key=Key(0), energy=Energy.MID))
    pickup, first = opened.sections[:2]
    with pytest.raises(MusicError, match="one bar"):
        dataclasses.replace(pickup, bars=2)
    with pytest.raises(MusicError, match="only a piece's first"):
        FormPlan(
            "x", (dataclasses.replace(first, first_bar=0), dataclasses.replace(pickup, first_bar=4))
        )
    with pytest.raises(MusicError, match="only a piece's first"):
        FormPlan("x", (pickup,))


def test_a_phrase_pattern_plans_one_section_per_phrase() -> None:
    plan = plan_pattern("A A~ B C", key=Key(7), energy=Energy.MID)
    assert plan.name == "AA'BC" and plan.total_bars == 16
    assert [s.label for s in plan.sections] == ["A", "A'", "B", "C"]
    assert [s.treatment for s in plan.sections] == [
        Treatment.NEW,
        Treatment.VARY,
        Treatment.NEW,
        Treatment.NEW,
    ]
    assert plan.sections[1].source == 0
    # a half cadence mid-strain, the first strain closing on the tonic, the piece too
    assert [s.cadence for s in plan.sections] == [
        Cadence.HALF,
        Cadence.AUTHENTIC,
        Cadence.HALF,
        Cadence.AUTHENTIC,
    ]
    # the second strain's new material plays a level up
    assert [s.energy for s in plan.sections] == [Energy.MID, Energy.MID, Energy.HIGH, Energy.HIGH]
    assert all(s.key == Key(7) and s.key_area is KeyArea.HOME for s in plan.sections)


def test_a_repeated_phrase_closes_as_its_source_and_returns_keep_its_energy() -> None:
    plan = plan_pattern("A A= B A~", key=Key(0), energy=Energy.LOW)
    assert [s.label for s in plan.sections] == ["A", "A'", "B", "A''"]
    assert plan.sections[1].treatment is Treatment.REPEAT
    assert plan.sections[1].cadence is plan.sections[0].cadence is Cadence.HALF
    assert plan.sections[3].treatment is Treatment.VARY and plan.sections[3].source == 0
    assert plan.sections[3].energy is Energy.LOW and plan.sections[2].energy is Energy.MID
    # a repeat as the last phrase must close on the tonic: it varies its source's cadence
    last = plan_pattern("A B A=", key=Key(0), energy=Energy.MID).sections[-1]
    assert last.treatment is Treatment.VARY and last.cadence is Cadence.AUTHENTIC
    assert plan_pattern("A B", key=Key(0), energy=Energy.MID).name == "AB"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "at least one phrase"),
        ("A b", "'b'"),
        ("A A+", "'A+'"),
        ("A B~ C", "returns to B before it"),
        ("A B A", "states A again"),
    ],
)
def test_a_malformed_phrase_pattern_is_refused_naming_the_phrase(pattern, problem) -> None:
    with pytest.raises(MusicError, match=re.escape(problem)):
        plan_pattern(pattern, key=Key(0), energy=Energy.MID)


def test_the_opening_strain_is_the_theme_and_the_phrases_that_answer_it() -> None:
    through = plan_pattern("A B C D", key=Key(0), energy=Energy.MID)
    assert through.opening_strain() == {0, 1}  # B answers A inside the first eight bars
    assert plan_pattern("A A~ B C", key=Key(0), energy=Energy.MID).opening_strain() == {0}
    # a named form's B plays a level up: it contrasts wherever it starts
    assert plan_form("ABA", bars=12, key=Key(0), energy=Energy.MID).opening_strain() == {0}
    song = plan_form("verse-chorus", bars=32, key=Key(0), energy=Energy.MID)
    assert [song.sections[i].label for i in song.opening_strain()] == ["verse"]
