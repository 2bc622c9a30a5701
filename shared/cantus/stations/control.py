"""Closed-loop control of a listening session: the next piece from the listener's state.

Pure functions over the session's config and state (``cantus.stations.sessions``,
``cantus.stations.signals``); the station service and ``cantus bench therapy`` call the
same ``next_step``. Each piece starts at the tempo the previous one ended on and ramps, one
equal step per beat, to an end tempo chosen here:

1. **Desired tempo** by mode. ``follow``: one ``follow_lead_fraction`` step from the measured
   rate towards the target (the iso principle re-planned from the measurement);
   with self-reported mood instead of a rate, towards the target unless the reported
   arousal is well above what the plan has reached (then hold). ``entrain``: match the
   measured rate; once the music is within ``match_tolerance`` of it (locked), lead it by
   ``lead_fraction`` per piece; a listener the music has left behind by twice the
   tolerance is matched again. No fresh reading (``dropout_seconds``): hold the tempo.
   "Too fast", "too slow" and "more calm" add their nudge.
2. **Bounds**: the change is at most ``max_tempo_step_per_piece_bpm`` and
   ``max_tempo_change_per_minute_bpm`` times the piece's minutes, inside the floor and
   ceiling.
3. **Energy and valence** follow the tempo's progress from start to target, shifted by
   the intensity asked mid-stream, inside the energy floor and ceiling; valence picks the
   mode (and its relative key, as open-loop plans do).
4. **The end**: when what is left of the session holds less than one and a half pieces,
   this is the last piece: its bars are fitted to end the session on time, and it closes
   with the ritardando and final cadence (the station fades the last ``fade_seconds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cantus.music.notes import Meter
from cantus.render.tempo import ending_tempo_map
from cantus.stations.plans import MAJOR_KEY, MIN_TEMPO_TOLERANCE_BPM, MINOR_KEY
from cantus.stations.sessions import ControlMode, RateSignal, SessionConfig
from cantus.stations.signals import rate_is_fresh
from cantus.stations.steering import mood_for
from cantus.v1 import station_pb2 as st

METER = Meter.parse("4/4")
INTENSITY_ENERGY_RANGE = 0.6
"""Energy added by intensity 1 (and taken by 0) around the plan's, before the bounds."""
MOOD_HOLD_AROUSAL = 0.15
"""Mood-steered sessions hold while the reported arousal is this far above the plan's."""
LAST_PIECE_SPAN = 1.5
"""The last piece is the one after which less than this many pieces' time would be left."""


@dataclass(frozen=True)
class Decision:
    """The next piece's step, and the adjustment record when it differs from open loop."""

    step: st.PlanStep
    adjustment: st.Adjustment


def piece_seconds(
    start_bpm: float, end_bpm: float, bars: int, *, ritardando: bool, meter: Meter = METER
) -> float:
    """Length of a session piece, seconds: its ramp (and ritardando) as render plays it."""
    tempo = ending_tempo_map(start_bpm, meter, bars, tempo_end_bpm=end_bpm, ritardando=ritardando)
    return tempo.seconds_at(bars * meter.bar_ticks)


def reference_tempo(config: SessionConfig, seconds: float) -> float:
    """The open-loop plan's tempo ``seconds`` into the session: linear from start to target,
    reached one piece before the end."""
    start, target = config.start[0], config.target[0]
    span = max(config.minutes * 60 - piece_seconds(target, target, config.piece_bars,
                                                     ritardando=False), 1.0)  # fmt: skip
    return start + (target - start) * min(max(seconds / span, 0.0), 1.0)


def next_step(
    config: SessionConfig,
    state: st.SessionState,
    *,
    index: int,
    previous_end_bpm: float,
    now_ns: int,
) -> Decision:
    """The step of piece ``index``; updates ``state`` (lock, nudges consumed, planned
    seconds). ``previous_end_bpm`` is the tempo the previous piece ended on (0: first)."""
    fresh = config.signal is not RateSignal.MOOD and rate_is_fresh(state, config, now_ns)
    if previous_end_bpm > 0:
        start_bpm = previous_end_bpm
    elif fresh:  # iso principle: the first piece meets the listener where they are
        start_bpm = config.clamp_tempo(state.rate_bpm)
    else:
        start_bpm = config.start[0]
    elapsed = state.planned_seconds
    estimate = piece_seconds(start_bpm, start_bpm, config.piece_bars, ritardando=False)
    planned = reference_tempo(config, elapsed + estimate)

    desired, reason = _desired(config, state, start_bpm, planned, fresh, now_ns)
    if state.nudge_bpm:
        desired += state.nudge_bpm
        reason += f"; {'too fast' if state.nudge_bpm < 0 else 'too slow'}: {state.nudge_bpm:+.1f}"
        state.nudge_bpm = 0.0

    limit = min(
        config.max_tempo_step_per_piece_bpm,
        config.max_tempo_change_per_minute_bpm * estimate / 60.0,
    )
    end_bpm = config.clamp_tempo(start_bpm + max(-limit, min(limit, desired - start_bpm)))
    end_bpm = round(end_bpm, 2)

    remaining = config.minutes * 60 - elapsed
    last = remaining < LAST_PIECE_SPAN * estimate
    bars = (
        _fit_bars(start_bpm, end_bpm, remaining, config.piece_bars) if last else config.piece_bars
    )
    duration = piece_seconds(start_bpm, end_bpm, bars, ritardando=last)

    progress = _progress(config, end_bpm, (elapsed + duration) / (config.minutes * 60))
    energy = _interpolate(config.start[1], config.target[1], progress)
    energy = config.clamp_energy(energy + (state.intensity - 0.5) * INTENSITY_ENERGY_RANGE)
    planned_energy = config.clamp_energy(_interpolate(config.start[1], config.target[1],
                                                      _progress(config, planned, 1.0)))  # fmt: skip
    valence = _interpolate(config.start[2], config.target[2], progress)
    mode = "major" if valence >= 0.5 else "minor"
    step = st.PlanStep(
        index=index,
        tempo_bpm=round(start_bpm, 2),
        tempo_min_bpm=round(start_bpm - MIN_TEMPO_TOLERANCE_BPM, 2),
        tempo_max_bpm=round(start_bpm + MIN_TEMPO_TOLERANCE_BPM, 2),
        tempo_end_bpm=end_bpm,
        energy=round(energy, 3),
        mood=mood_for(energy, valence),
        mode=mode,
        key=MAJOR_KEY if mode == "major" else MINOR_KEY,
        bars=bars,
        duration_seconds=round(duration, 2),
        start_seconds=round(elapsed, 2),
        last=last,
        adjusted=reason,
    )
    state.planned_seconds = elapsed + duration
    adjustment = st.Adjustment(
        plan_step=index,
        planned_tempo_bpm=round(planned, 2),
        tempo_bpm=end_bpm,
        planned_energy=round(planned_energy, 3),
        energy=step.energy,
        reason=reason,
    )
    return Decision(step, adjustment)


def _desired(
    config: SessionConfig,
    state: st.SessionState,
    start_bpm: float,
    planned: float,
    fresh: bool,
    now_ns: int,
) -> tuple[float, str]:
    target = config.target[0]
    if config.mode is ControlMode.OPEN:
        return planned, "open loop"
    if config.signal is RateSignal.MOOD:
        reported = (
            state.mood_unix_ns and now_ns - state.mood_unix_ns <= 4 * config.dropout_seconds * 1e9
        )
        plan_energy = _interpolate(config.start[1], config.target[1],
                                   _progress(config, start_bpm, 0.0))  # fmt: skip
        if reported and state.arousal > plan_energy + MOOD_HOLD_AROUSAL:
            return start_bpm, f"hold: reported arousal {state.arousal:.2f} above the plan's"
        return target, "towards the target"
    if not fresh:
        if state.rate_unix_ns == 0:
            return start_bpm, "hold: no reading yet"
        return start_bpm, "hold: signal dropout"
    rate = state.rate_bpm
    name = "cadence" if config.signal is RateSignal.STEP_CADENCE else "heart rate"
    if config.mode is ControlMode.FOLLOW:
        step = config.follow_lead_fraction * rate
        lead = max(-step, min(step, target - rate))
        return rate + lead, f"follow: {name} {rate:.1f}"
    # entrain
    tolerance = config.match_tolerance * rate
    if state.locked and abs(start_bpm - rate) > 2 * tolerance:
        state.locked = False  # the listener did not follow: meet them again
    if not state.locked:
        if abs(start_bpm - rate) > tolerance:
            return rate, f"entrain: matching {name} {rate:.1f}"
        state.locked = True
    if abs(rate - target) <= config.match_tolerance * target:
        return target, f"entrain: at the target, {name} {rate:.1f}"
    lead = max(-config.lead_fraction * rate, min(config.lead_fraction * rate, target - rate))
    return rate + lead, f"entrain: leading {name} {rate:.1f}"


def _progress(config: SessionConfig, tempo_bpm: float, time_fraction: float) -> float:
    """How far ``tempo_bpm`` is from the start tempo to the target's, 0..1 (the time
    fraction when the two tempi are the same)."""
    start, target = config.start[0], config.target[0]
    if abs(target - start) < 1e-6:
        return min(max(time_fraction, 0.0), 1.0)
    return min(max((tempo_bpm - start) / (target - start), 0.0), 1.0)


def _interpolate(a: float, b: float, fraction: float) -> float:
    return a + (b - a) * fraction


def _fit_bars(start_bpm: float, end_bpm: float, remaining_seconds: float, piece_bars: int) -> int:
    """Bars (even, 4 to twice a piece's) of a closing piece whose length is nearest to what
    is left."""
    best, best_error = 4, float("inf")
    for bars in range(4, 2 * piece_bars + 1, 2):
        error = abs(piece_seconds(start_bpm, end_bpm, bars, ritardando=True) - remaining_seconds)
        if error < best_error:
            best, best_error = bars, error
    return best
