"""Listener signals of a session: checked at the edge (``check_signal``, a ``SignalError``
naming the field), then filtered into the session's state (``take_signal``) — outliers
rejected, out-of-order readings dropped, and a rate that goes quiet for
``SessionConfig.dropout_seconds`` no longer steers (``rate_is_fresh``): control then holds
the last good state.

Outlier rule: a rate reading further from the current rate than ``outlier_bpm`` plus
``outlier_bpm_per_second`` per second since the last accepted reading is rejected (a
heart rate does not move 40 BPM in two seconds; a sensor glitch does). Rejected readings
that agree with each other (within ``outlier_bpm`` of their mean) ``confirm_readings``
times in a row are a real change of rate, and become the rate. Accepted readings are
smoothed: the rate moves ``SMOOTHING`` of the way to each.
"""

from __future__ import annotations

import math
import time
import uuid
from enum import StrEnum

from cantus.stations.sessions import RateSignal, SessionConfig
from cantus.v1 import station_pb2 as st

FUTURE_SLACK_NS = 10 * 1_000_000_000
"""A reading may be stamped at most this far ahead of the receiver's clock (clock skew)."""
RATE_RANGES: dict[int, tuple[float, float]] = {
    st.HEART_RATE: (30.0, 220.0),
    st.STEP_CADENCE: (40.0, 240.0),
}
"""Plausible rates, beats or steps per minute, per kind; outside is refused at the edge."""
RATE_KINDS = {RateSignal.HEART_RATE: st.HEART_RATE, RateSignal.STEP_CADENCE: st.STEP_CADENCE}
SMOOTHING = 0.5
"""Fraction of the way the rate moves to each accepted reading (exponential smoothing)."""


class SignalError(ValueError):
    """An invalid signal; ``field`` names it (``value``, ``measured_unix_ns`` …)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Rejection(StrEnum):
    """Why a valid signal was not used (countable; logged in the outcome)."""

    OUTLIER = "outlier"
    LATE = "older than the last reading used"
    NOT_FOLLOWED = "a rate this session does not follow"
    SESSION_OPEN = "open-loop session: logged only"


def check_signal(signal: st.ListenerSignal, now_ns: int | None = None) -> st.ListenerSignal:
    """``signal`` if it is well-formed; else ``SignalError`` naming the field."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if not signal.station:
        raise SignalError("station", "name the session's station")
    if signal.measured_unix_ns <= 0:
        raise SignalError("measured_unix_ns", "give when it was measured (Unix ns > 0)")
    if signal.measured_unix_ns > now_ns + FUTURE_SLACK_NS:
        ahead = (signal.measured_unix_ns - now_ns) / 1e9
        raise SignalError("measured_unix_ns", f"{ahead:.0f} s in the future")
    if signal.kind not in st.SignalKind.values() or signal.kind == st.SIGNAL_KIND_UNKNOWN:
        raise SignalError("kind", f"{signal.kind} is not a signal kind")
    for name in ("value", "valence", "arousal"):
        if not math.isfinite(getattr(signal, name)):
            raise SignalError(name, "not a finite number")
    if signal.kind in RATE_RANGES:
        low, high = RATE_RANGES[signal.kind]
        if not low <= signal.value <= high:
            unit = "beats" if signal.kind == st.HEART_RATE else "steps"
            raise SignalError("value", f"{signal.value:g} is outside {low:g}..{high:g} {unit}/min")
    elif signal.kind == st.MOOD:
        for name in ("valence", "arousal"):
            value = getattr(signal, name)
            if not 0.0 <= value <= 1.0:
                raise SignalError(name, f"{value:g} is outside 0..1")
    elif signal.kind == st.INTENSITY and not 0.0 <= signal.value <= 1.0:
        raise SignalError("value", f"intensity {signal.value:g} is outside 0..1")
    return signal


def new_session_state(config_yaml: str, config: SessionConfig) -> st.SessionState:
    return st.SessionState(
        config_yaml=config_yaml,
        start=config.start_state.to_pb(),
        target=config.target_state.to_pb(),
        intensity=0.5,
        session_id=uuid.uuid4().hex,
    )


def rate_is_fresh(state: st.SessionState, config: SessionConfig, now_ns: int) -> bool:
    """Whether the followed rate has a reading of the last ``dropout_seconds``."""
    return state.rate_unix_ns > 0 and now_ns - state.rate_unix_ns <= config.dropout_seconds * 1e9


def take_signal(
    state: st.SessionState, config: SessionConfig, signal: st.ListenerSignal
) -> Rejection | None:
    """Fold a checked signal into ``state`` (in place); the reason if it was not used."""
    rejection = _take(state, config, signal)
    if rejection is None:
        state.signals_accepted += 1
    else:
        state.signals_rejected += 1
    return rejection


def _take(
    state: st.SessionState, config: SessionConfig, signal: st.ListenerSignal
) -> Rejection | None:
    kind = signal.kind
    if kind in RATE_RANGES:
        if RATE_KINDS.get(config.signal) != kind:
            return Rejection.NOT_FOLLOWED
        return _take_rate(state, config, signal)
    if kind == st.MOOD:
        if signal.measured_unix_ns < state.mood_unix_ns:
            return Rejection.LATE
        state.valence, state.arousal = signal.valence, signal.arousal
        state.mood_unix_ns = signal.measured_unix_ns
        return None
    if config.mode == "open":
        return Rejection.SESSION_OPEN
    if kind == st.INTENSITY:
        state.intensity = signal.value
    elif kind == st.TOO_FAST:
        state.nudge_bpm -= config.nudge_fraction * _reference_tempo(state)
    elif kind == st.TOO_SLOW:
        state.nudge_bpm += config.nudge_fraction * _reference_tempo(state)
    elif kind == st.MORE_CALM:
        state.nudge_bpm -= config.nudge_fraction * _reference_tempo(state)
        state.intensity = max(0.0, state.intensity - 0.15)
    return None


def _reference_tempo(state: st.SessionState) -> float:
    return state.rate_bpm or state.start.tempo_bpm or 100.0


def _take_rate(
    state: st.SessionState, config: SessionConfig, signal: st.ListenerSignal
) -> Rejection | None:
    value, at = signal.value, signal.measured_unix_ns
    if state.rate_unix_ns and at <= state.rate_unix_ns:
        return Rejection.LATE
    state.rate_kind = signal.kind
    if state.rate_unix_ns == 0 or not rate_is_fresh(state, config, at):
        # First reading, or the first after a dropout: nothing to compare it with.
        _set_rate(state, value, at, fresh_start=True)
        return None
    seconds = (at - state.rate_unix_ns) / 1e9
    allowed = config.outlier_bpm + config.outlier_bpm_per_second * seconds
    if abs(value - state.rate_bpm) <= allowed:
        _set_rate(state, value, at, fresh_start=False)
        return None
    # An outlier, unless enough of them in a row agree: then the rate really moved.
    if state.pending_count and abs(value - state.pending_rate_bpm) <= config.outlier_bpm:
        state.pending_rate_bpm += (value - state.pending_rate_bpm) / (state.pending_count + 1)
        state.pending_count += 1
    else:
        state.pending_rate_bpm, state.pending_count = value, 1
    if state.pending_count >= config.confirm_readings:
        _set_rate(state, state.pending_rate_bpm, at, fresh_start=True)
        return None
    return Rejection.OUTLIER


def _set_rate(state: st.SessionState, value: float, at: int, *, fresh_start: bool) -> None:
    state.rate_bpm = value if fresh_start else state.rate_bpm + SMOOTHING * (value - state.rate_bpm)
    state.rate_unix_ns = at
    state.pending_count, state.pending_rate_bpm = 0, 0.0
