"""Therapy plans after the iso principle (Altshuler 1948): the first piece matches the
listener's current state, then each piece moves one step towards the target state.

A state is a tempo (quarter-note BPM), an energy (arousal, 0..1) and a valence (0 dark …
1 bright, realised as the key's mode). A plan has N pieces, or as many as fill M minutes;
piece i sits at fraction i / (N - 1) of the way, and its tempo must stay within half a step
of that point (at least ``MIN_TEMPO_TOLERANCE_BPM``) — the bounds the tests check measured
pieces against.
"""

from __future__ import annotations

from dataclasses import dataclass

from cantus.music.notes import Meter
from cantus.music.styles import TEMPO_RANGE_BPM
from cantus.requests import clip_problem
from cantus.stations.steering import mood_for
from cantus.v1 import station_pb2 as st

MIN_TEMPO_TOLERANCE_BPM = 2.0
MAX_PIECES = 200
MAJOR_KEY, MINOR_KEY = "F", "D"
"""Relative keys: a plan that crosses from major to minor keeps the same key signature."""


class PlanError(ValueError):
    """An impossible plan; ``field`` names the request field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {clip_problem(problem)}")
        self.field = field


@dataclass(frozen=True)
class State:
    tempo_bpm: float
    energy: float
    valence: float

    @classmethod
    def parse(cls, text: str, field: str) -> State:
        """``"110,0.8,0.9"`` (tempo, energy, valence) or ``"110"`` (energy and valence 0.5)."""
        parts = [p for p in text.replace(" ", "").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise PlanError(field, f"{text!r} is not TEMPO[,ENERGY[,VALENCE]] numbers") from None
        if not 1 <= len(values) <= 3:
            raise PlanError(field, f"{text!r} is not TEMPO[,ENERGY[,VALENCE]]")
        values += [0.5] * (3 - len(values))
        return check_state(cls(*values), field)

    def to_pb(self) -> st.ListenerState:
        return st.ListenerState(tempo_bpm=self.tempo_bpm, energy=self.energy, valence=self.valence)

    @classmethod
    def from_pb(cls, state: st.ListenerState, field: str) -> State:
        return check_state(cls(state.tempo_bpm, state.energy, state.valence), field)


def check_state(state: State, field: str) -> State:
    low, high = TEMPO_RANGE_BPM
    if not low <= state.tempo_bpm <= high:
        raise PlanError(f"{field}.tempo_bpm", f"{state.tempo_bpm:g} is outside {low:g}..{high:g}")
    for name in ("energy", "valence"):
        value = getattr(state, name)
        if not 0.0 <= value <= 1.0:
            raise PlanError(f"{field}.{name}", f"{value:g} is outside 0..1")
    return state


def piece_seconds(bars: int, meter: Meter, tempo_bpm: float) -> float:
    """Length of ``bars`` bars at a quarter-note tempo, in seconds (no release tail)."""
    quarters = bars * meter.bar_ticks / 480
    return quarters * 60.0 / tempo_bpm


def plan_session(
    start: State,
    target: State,
    *,
    minutes: float = 0.0,
    pieces: int = 0,
    bars: int = 16,
    meter: str = "4/4",
) -> list[st.PlanStep]:
    """The playlist of a session: one step per piece, from ``start`` to ``target``."""
    parsed_meter = Meter.parse(meter)
    if pieces < 0 or pieces > MAX_PIECES:
        raise PlanError("pieces", f"{pieces} is outside 0..{MAX_PIECES}")
    if pieces == 0:
        if not minutes > 0:
            raise PlanError("minutes", "give minutes > 0 or a number of pieces")
        # The fewest pieces whose total length reaches the session's length.
        for count in range(1, MAX_PIECES + 1):
            steps = _steps(start, target, count, bars, parsed_meter)
            if steps[-1].start_seconds + steps[-1].duration_seconds >= minutes * 60:
                return steps
        raise PlanError("minutes", f"{minutes:g} minutes need more than {MAX_PIECES} pieces")
    return _steps(start, target, pieces, bars, parsed_meter)


def _steps(start: State, target: State, count: int, bars: int, meter: Meter) -> list[st.PlanStep]:
    step_bpm = abs(target.tempo_bpm - start.tempo_bpm) / max(count - 1, 1)
    tolerance = max(step_bpm / 2, MIN_TEMPO_TOLERANCE_BPM)
    steps: list[st.PlanStep] = []
    clock = 0.0
    for index in range(count):
        fraction = index / (count - 1) if count > 1 else 1.0
        tempo = round(start.tempo_bpm + (target.tempo_bpm - start.tempo_bpm) * fraction, 1)
        energy = start.energy + (target.energy - start.energy) * fraction
        valence = start.valence + (target.valence - start.valence) * fraction
        mode = "major" if valence >= 0.5 else "minor"
        duration = piece_seconds(bars, meter, tempo)
        steps.append(
            st.PlanStep(
                index=index,
                tempo_bpm=tempo,
                tempo_min_bpm=round(tempo - tolerance, 2),
                tempo_max_bpm=round(tempo + tolerance, 2),
                energy=round(energy, 3),
                mood=mood_for(energy, valence),
                mode=mode,
                key=MAJOR_KEY if mode == "major" else MINOR_KEY,
                bars=bars,
                duration_seconds=round(duration, 2),
                start_seconds=round(clock, 2),
            )
        )
        clock += duration
    return steps
