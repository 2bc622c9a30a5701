"""Closed-loop control of a session: bounds always hold, entrainment matches then leads,
a dropout holds, and the last piece ends the session on time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

from cantus.stations.control import next_step, piece_seconds
from cantus.stations.plans import PlanError
from cantus.stations.sessions import PRESETS, session_config
from cantus.stations.signals import new_session_state, take_signal
from cantus.v1 import station_pb2 as st

NOW = 1_800_000_000 * 10**9
SECOND = 10**9


def rate(state, config, value, at):
    kind = st.STEP_CADENCE if config.signal == "step_cadence" else st.HEART_RATE
    take_signal(state, config, st.ListenerSignal(station="x", measured_unix_ns=at, kind=kind,
                                                 value=value))  # fmt: skip


def test_presets_are_valid_configs_and_overrides_name_their_field():
    for name in PRESETS:
        config = session_config(name)
        assert config.tempo_floor_bpm <= config.target[0] <= config.tempo_ceiling_bpm
    assert (
        session_config("walk", "max_tempo_step_per_piece_bpm: 2").max_tempo_step_per_piece_bpm == 2
    )
    for preset, overrides, field in [
        ("nap", "", "preset"),
        ("walk", "mode: jog", "session_yaml.mode"),
        ("walk", "tempo_floor_bpm: 150", "session_yaml.tempo_floor_bpm"),
        ("walk", "tempo_floor_bpm: 130", "session_yaml.start"),
        ("walk", "colour: red", "session_yaml.colour"),
        ("focus", "mode: entrain", "session_yaml.signal"),
        ("walk", "[1, 2]", "session_yaml"),
    ]:
        with pytest.raises(PlanError) as caught:
            session_config(preset, overrides)
        assert caught.value.field == field, caught.value


def test_entrainment_matches_the_cadence_then_leads_it_in_small_steps():
    config = session_config("walk", "max_tempo_change_per_minute_bpm: 30")
    state = new_session_state("", config)
    rate(state, config, 90.0, NOW)
    first = next_step(config, state, index=0, previous_end_bpm=0, now_ns=NOW)
    assert first.step.tempo_bpm == 90.0  # the first piece meets the walker
    assert not state.locked or first.step.tempo_end_bpm > 90
    previous = first.step.tempo_end_bpm
    ends = []
    walker = 90.0
    for index in range(1, 12):
        at = NOW + index * 20 * SECOND
        walker = previous  # a walker who follows exactly
        rate(state, config, walker, at)
        decision = next_step(config, state, index=index, previous_end_bpm=previous, now_ns=at)
        assert decision.step.tempo_bpm == previous  # continuous: no jump between pieces
        lead = decision.step.tempo_end_bpm - walker
        assert 0 <= lead <= config.lead_fraction * walker + 1e-6
        ends.append(decision.step.tempo_end_bpm)
        previous = decision.step.tempo_end_bpm
    assert state.locked
    assert ends == sorted(ends) and ends[-1] > 100


def test_a_walker_left_behind_is_matched_again():
    config = session_config("walk", "max_tempo_change_per_minute_bpm: 30")
    state = new_session_state("", config)
    state.locked = True
    rate(state, config, 100.0, NOW)
    decision = next_step(config, state, index=3, previous_end_bpm=110.0, now_ns=NOW)
    assert not state.locked
    assert decision.step.tempo_end_bpm < 110.0
    assert "matching" in decision.step.adjusted


def test_dropout_holds_the_tempo():
    config = session_config("relax")
    state = new_session_state("", config)
    rate(state, config, 85.0, NOW)
    later = NOW + int((config.dropout_seconds + 5) * SECOND)
    decision = next_step(config, state, index=4, previous_end_bpm=82.0, now_ns=later)
    assert decision.step.tempo_end_bpm == 82.0
    assert decision.step.adjusted.startswith("hold: signal dropout")


def test_too_fast_slows_the_next_piece_and_is_used_once():
    config = session_config("focus")
    state = new_session_state("", config)
    take_signal(state, config, st.ListenerSignal(station="x", measured_unix_ns=NOW,
                                                 kind=st.TOO_FAST))  # fmt: skip
    decision = next_step(config, state, index=2, previous_end_bpm=100.0, now_ns=NOW)
    assert decision.step.tempo_end_bpm < 100.0 and "too fast" in decision.step.adjusted
    again = next_step(config, state, index=3, previous_end_bpm=100.0, now_ns=NOW)
    assert again.step.tempo_end_bpm == 100.0


def test_intensity_moves_energy_within_its_bounds():
    config = session_config("focus")
    energies = []
    for intensity in (0.0, 0.5, 1.0):
        state = new_session_state("", config)
        state.intensity = intensity
        energies.append(next_step(config, state, index=1, previous_end_bpm=100.0,
                                  now_ns=NOW).step.energy)  # fmt: skip
    assert energies[0] < energies[1] < energies[2]
    assert config.energy_floor <= energies[0] and energies[2] <= config.energy_ceiling


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_session_ends_on_time_with_one_last_piece(preset):
    config = session_config(preset, "minutes: 3")
    state = new_session_state("", config)
    steps = []
    previous = 0.0
    while not steps or not steps[-1].last:
        steps.append(next_step(config, state, index=len(steps), previous_end_bpm=previous,
                               now_ns=NOW).step)  # fmt: skip
        previous = steps[-1].tempo_end_bpm
        assert len(steps) < 50
    end = steps[-1].start_seconds + steps[-1].duration_seconds
    # within half of what two bars take at the last piece's tempo
    assert abs(end - 180) <= piece_seconds(previous, previous, 2, ritardando=False) / 2 + 1
    assert [s.last for s in steps].count(True) == 1


@settings(max_examples=80, deadline=None)
@given(
    preset=s.sampled_from(list(PRESETS)),
    readings=s.lists(s.floats(40, 200), min_size=1, max_size=30),
    start=s.floats(40, 200),
    nudges=s.lists(s.sampled_from([st.TOO_FAST, st.TOO_SLOW, st.MORE_CALM]), max_size=4),
)
def test_bounds_hold_whatever_the_listener_does(preset, readings, start, nudges):
    config = session_config(preset)
    state = new_session_state("", config)
    previous = config.clamp_tempo(start)
    at = NOW
    for index, value in enumerate(readings):
        at += 20 * SECOND
        rate(state, config, value, at)
        for kind in nudges:
            take_signal(state, config, st.ListenerSignal(station="x", measured_unix_ns=at,
                                                         kind=kind))  # fmt: skip
        step = next_step(config, state, index=index, previous_end_bpm=previous, now_ns=at).step
        change = abs(step.tempo_end_bpm - step.tempo_bpm)
        minutes = piece_seconds(step.tempo_bpm, step.tempo_bpm, step.bars, ritardando=False) / 60
        assert change <= config.max_tempo_step_per_piece_bpm + 0.01
        assert change <= config.max_tempo_change_per_minute_bpm * minutes + 0.01
        assert config.tempo_floor_bpm <= step.tempo_end_bpm <= config.tempo_ceiling_bpm
        assert config.energy_floor <= step.energy <= config.energy_ceiling
        assert step.tempo_bpm == pytest.approx(previous, abs=0.006)
        previous = step.tempo_end_bpm
        if step.last:
            break
