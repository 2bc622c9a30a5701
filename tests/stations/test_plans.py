"""Therapy plans after the iso principle."""

import itertools

import pytest

from cantus.stations.plans import PlanError, State, plan_session


def test_plan_moves_from_start_to_target_in_steps():
    steps = plan_session(State(110, 0.8, 0.9), State(65, 0.1, 0.2), minutes=20, bars=16)
    total = steps[-1].start_seconds + steps[-1].duration_seconds
    assert total >= 20 * 60 and steps[-1].start_seconds < 20 * 60
    assert steps[0].tempo_bpm == 110 and steps[-1].tempo_bpm == 65
    tempos = [s.tempo_bpm for s in steps]
    assert tempos == sorted(tempos, reverse=True)
    assert steps[0].mode == "major" and steps[-1].mode == "minor"
    assert steps[0].mood in ("triumphant", "energetic") and steps[-1].mood in ("sad", "dreamy")
    for step in steps:
        assert step.tempo_min_bpm <= step.tempo_bpm <= step.tempo_max_bpm
    # Neighbouring steps' bounds meet: the plan leaves no tempo unreachable.
    for a, b in itertools.pairwise(steps):
        assert a.tempo_min_bpm <= b.tempo_max_bpm + 1e-6
        assert b.start_seconds == pytest.approx(a.start_seconds + a.duration_seconds, abs=0.02)


def test_plan_by_pieces():
    steps = plan_session(State(60, 0.2, 0.3), State(100, 0.7, 0.8), pieces=5, bars=8)
    assert [s.tempo_bpm for s in steps] == [60, 70, 80, 90, 100]
    assert steps[0].tempo_max_bpm - steps[0].tempo_bpm == pytest.approx(5)


@pytest.mark.parametrize(
    ("text", "field"), [("abc", "from"), ("300", "from"), ("90,2", "from"), ("1,2,3,4", "from")]
)
def test_bad_states_are_named(text, field):
    with pytest.raises(PlanError) as caught:
        State.parse(text, field)
    assert caught.value.field.startswith(field)


def test_plan_needs_a_length():
    with pytest.raises(PlanError, match="minutes"):
        plan_session(State(100, 0.5, 0.5), State(80, 0.5, 0.5))
