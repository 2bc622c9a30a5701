"""Listener signals: checked at the edge with the field named, then filtered (outliers,
late readings, dropout) into the session's state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

from cantus.stations.sessions import session_config
from cantus.stations.signals import (
    Rejection,
    SignalError,
    check_signal,
    new_session_state,
    rate_is_fresh,
    take_signal,
)
from cantus.v1 import station_pb2 as st

NOW = 1_800_000_000 * 10**9
SECOND = 10**9


def signal(kind=st.HEART_RATE, value=80.0, at=NOW, **fields) -> st.ListenerSignal:
    return st.ListenerSignal(station="calm", measured_unix_ns=at, kind=kind, value=value, **fields)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (st.ListenerSignal(measured_unix_ns=NOW, kind=st.HEART_RATE, value=80), "station"),
        (signal(at=0), "measured_unix_ns"),
        (signal(at=NOW + 60 * SECOND), "measured_unix_ns"),
        (signal(kind=st.SIGNAL_KIND_UNKNOWN), "kind"),
        (signal(kind=99), "kind"),
        (signal(value=400), "value"),
        (signal(value=float("nan")), "value"),
        (signal(kind=st.STEP_CADENCE, value=10), "value"),
        (signal(kind=st.MOOD, value=0, valence=1.5, arousal=0.5), "valence"),
        (signal(kind=st.MOOD, value=0, valence=0.5, arousal=-0.1), "arousal"),
        (signal(kind=st.INTENSITY, value=2), "value"),
    ],
)
def test_bad_signals_name_their_field(bad, field):
    with pytest.raises(SignalError) as caught:
        check_signal(bad, now_ns=NOW)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_good_signals_pass():
    for good in (
        signal(),
        signal(kind=st.STEP_CADENCE, value=110),
        signal(kind=st.MOOD, value=0, valence=0.2, arousal=0.9),
        signal(kind=st.TOO_FAST, value=0),
        signal(kind=st.INTENSITY, value=0.8),
        signal(at=NOW + 5 * SECOND),  # a little clock skew is fine
    ):
        assert check_signal(good, now_ns=NOW) is good


def fresh_state(preset="relax"):
    config = session_config(preset)
    return config, new_session_state("", config)


def test_outliers_are_rejected_and_a_confirmed_change_is_taken():
    config, state = fresh_state()
    assert take_signal(state, config, signal(value=80)) is None
    assert take_signal(state, config, signal(value=81, at=NOW + 5 * SECOND)) is None
    assert state.rate_bpm == pytest.approx(80.5)
    # a strap glitch: one reading 40 BPM off is not used
    assert take_signal(state, config, signal(value=121, at=NOW + 10 * SECOND)) is Rejection.OUTLIER
    assert state.rate_bpm == pytest.approx(80.5)
    assert take_signal(state, config, signal(value=80, at=NOW + 15 * SECOND)) is None
    # a real jump (the listener stood up): enough agreeing readings in a row become the rate
    results = [
        take_signal(state, config, signal(value=110 + i % 2, at=NOW + (20 + i) * SECOND))
        for i in range(config.confirm_readings)
    ]
    assert results[:-1] == [Rejection.OUTLIER] * (config.confirm_readings - 1)
    assert results[-1] is None
    assert state.rate_bpm == pytest.approx(110.5, abs=0.6)
    assert state.signals_rejected == config.confirm_readings  # the glitch + the unconfirmed


def test_late_readings_and_rates_not_followed_are_not_used():
    config, state = fresh_state("walk")  # follows cadence
    assert take_signal(state, config, signal(kind=st.STEP_CADENCE, value=100)) is None
    late = signal(kind=st.STEP_CADENCE, value=101, at=NOW - SECOND)
    assert take_signal(state, config, late) is Rejection.LATE
    assert take_signal(state, config, signal(value=70)) is Rejection.NOT_FOLLOWED


def test_dropout_makes_the_rate_stale_and_the_next_reading_restarts_it():
    config, state = fresh_state()
    take_signal(state, config, signal(value=80))
    assert rate_is_fresh(state, config, NOW + int(config.dropout_seconds * SECOND))
    gone = NOW + int((config.dropout_seconds + 1) * SECOND)
    assert not rate_is_fresh(state, config, gone)
    assert state.rate_bpm == 80  # the last good value is held
    # after a dropout there is nothing to compare with: the first reading is the rate
    assert take_signal(state, config, signal(value=120, at=gone)) is None
    assert state.rate_bpm == 120


def test_self_reports_and_intensity():
    config, state = fresh_state()
    take_signal(state, config, signal(kind=st.TOO_FAST, value=0))
    assert state.nudge_bpm < 0
    take_signal(state, config, signal(kind=st.TOO_SLOW, value=0))
    take_signal(state, config, signal(kind=st.TOO_SLOW, value=0))
    assert state.nudge_bpm > 0
    take_signal(state, config, signal(kind=st.INTENSITY, value=0.9))
    assert state.intensity == pytest.approx(0.9)
    take_signal(state, config, signal(kind=st.MORE_CALM, value=0))
    assert state.intensity < 0.9
    take_signal(state, config, signal(kind=st.MOOD, value=0, valence=0.3, arousal=0.7))
    assert (state.valence, state.arousal) == (pytest.approx(0.3), pytest.approx(0.7))


@settings(max_examples=60, deadline=None)
@given(s.lists(s.tuples(s.floats(30, 220), s.integers(1, 20)), min_size=1, max_size=40))
def test_the_rate_always_stays_within_the_readings_seen(readings):
    config, state = fresh_state()
    at = NOW
    for value, gap in readings:
        at += gap * SECOND
        take_signal(state, config, signal(value=value, at=at))
        assert min(v for v, _ in readings) - 1e-9 <= state.rate_bpm
        assert state.rate_bpm <= max(v for v, _ in readings) + 1e-9
    assert state.signals_accepted + state.signals_rejected == len(readings)
