"""``cantus bench therapy``: closed-loop sessions against today's open-loop plan, on the same
simulated listeners in one run (``cantus.stations.listeners``).

For each preset with a rate to steer by (walk: step cadence, entrained; relax and sleep:
heart rate, followed) a population of listeners is drawn around the preset's assumed start.
Each listener hears two sessions of the preset's length:

* **open loop** — today's plan (``plan_session`` from the preset's start to its target,
  pieces of ``piece_bars`` bars, each at its step's tempo and closing with the form's
  ritardando, as the render service plays plan pieces today); signals change nothing.
* **closed loop** — ``cantus.stations.control.next_step`` per piece, fed the sensor's
  readings through the same checks and filter as the station service
  (``check_signal``, ``take_signal``), each piece ramping beat by beat from the tempo the
  last one ended on.

Time runs in steps of one second. A piece is decided when the piece before it starts to
play (a station composes one piece ahead), so control acts on readings one piece old. The
tempo heard at each moment is read off the same tempo map the render service writes
(``cantus.render.tempo.ending_tempo_map``). Between two of today's pieces the final chord
is held past the barline (``fermata_ticks``) before the next piece comes in, a stretch with
no beat (no pull on the listener); a closed-loop session's pieces join on the beat
(``StationMixer.hold``).

Reported per preset and loop, over the population: listeners that reached the target
(within ±3 % of its rate and staying there until the last piece's closing ritardando), the
median time they took, the median and largest overshoot past the target, the largest tempo
step heard (within a piece and from one piece to the next, BPM), and how far the session's
end is from its length.
"""

from __future__ import annotations

import bisect
import itertools
import random
import statistics
from dataclasses import dataclass, field

from cantus.music.notes import TICKS_PER_QUARTER
from cantus.render.arrangement import fermata_ticks
from cantus.render.tempo import RITARDANDO_BARS, TempoMap, ending_tempo_map
from cantus.stations.control import METER, next_step
from cantus.stations.listeners import ListenerModel, SimulatedListener, population
from cantus.stations.plans import plan_session
from cantus.stations.sessions import PRESETS, RateSignal, SessionConfig, session_config
from cantus.stations.signals import RATE_KINDS, check_signal, new_session_state, take_signal
from cantus.v1 import station_pb2 as st

CONVERGED_WITHIN = 0.03
"""A listener has reached the target once within this fraction of its rate, to the end."""
BASE_NS = 1_700_000_000 * 1_000_000_000
"""The simulated sessions' clock origin, Unix ns (any fixed time)."""

SCENARIOS: dict[str, dict[str, object]] = {
    "walk": {"floor_bpm": 80.0, "follow_seconds": (10.0, 30.0), "reading_seconds": 2.0},
    "relax": {"floor_bpm": 58.0, "follow_seconds": (40.0, 90.0), "reading_seconds": 5.0},
    "sleep": {"floor_bpm": 52.0, "follow_seconds": (60.0, 120.0), "reading_seconds": 5.0},
}
"""Presets benched, with their listeners' floor, lag range and reading interval."""


@dataclass
class Piece:
    start_s: float
    tempo: TempoMap
    duration_s: float
    _times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._times = [self.tempo.seconds_at(tick) for tick, _ in self.tempo.changes]

    def bpm_at(self, seconds: float) -> float:
        """Tempo heard ``seconds`` into the piece."""
        index = max(0, bisect.bisect_right(self._times, seconds) - 1)
        return self.tempo.changes[index][1]


@dataclass
class SessionRun:
    """One listener's session: rate per second, and what was played."""

    rates: list[float]
    pieces: list[Piece]
    target_bpm: float
    start_bpm: float
    length_s: float

    @property
    def end_s(self) -> float:
        last = self.pieces[-1]
        return last.start_s + last.duration_s

    @property
    def closing_s(self) -> int:
        """Second at which the last piece's closing ritardando starts: the session's ending,
        the same in every loop, which the convergence window stops before."""
        last = self.pieces[-1]
        bars = round(last.tempo.changes[-1][0] / METER.bar_ticks + 0.5)
        rit_tick = (bars - RITARDANDO_BARS) * METER.bar_ticks
        return int(last.start_s + last.tempo.seconds_at(rit_tick))

    def converged_s(self) -> float | None:
        """First second from which the rate stays within ±3 % of the target until the
        session's closing ritardando (None: it is not there by then)."""
        band = CONVERGED_WITHIN * self.target_bpm
        rates = self.rates[: max(self.closing_s, 1)]
        if abs(rates[-1] - self.target_bpm) > band:
            return None
        second = len(rates) - 1
        while second > 0 and abs(rates[second - 1] - self.target_bpm) <= band:
            second -= 1
        return float(second)

    def overshoot_bpm(self) -> float:
        """How far the rate went past the target, in the direction of travel (0: never)."""
        direction = 1.0 if self.target_bpm >= self.start_bpm else -1.0
        return max(0.0, max(direction * (r - self.target_bpm) for r in self.rates))

    def largest_steps_bpm(self) -> tuple[float, float]:
        """The largest tempo change heard from one beat to the next within a piece, and
        from one piece to the next, BPM; the last piece's closing ritardando (the ending
        both loops share) is left out, every other ritardando counts."""
        within = 0.0
        for number, piece in enumerate(self.pieces):
            changes = piece.tempo.changes
            if number == len(self.pieces) - 1:
                bars = round(piece.tempo.changes[-1][0] / METER.bar_ticks + 0.5)
                rit_start = (bars - RITARDANDO_BARS) * METER.bar_ticks
                changes = tuple(c for c in changes if c[0] < rit_start)
            within = max(within, max((abs(b[1] - a[1]) for a, b in _pairs(changes)), default=0.0))
        between = max(
            (abs(b.tempo.changes[0][1] - a.tempo.changes[-1][1]) for a, b in _pairs(self.pieces)),
            default=0.0,
        )
        return within, between


def _pairs(items):
    return itertools.pairwise(items)


LOOPS = ("open", "open, no ritardando", "closed")
"""Today's open-loop plan; the same plan with its pieces' ritardandos left out (how much
of the difference smooth pieces alone make); the closed loop."""


def simulate(config: SessionConfig, model: ListenerModel, *, loop: str, seed: int) -> SessionRun:
    """One session of ``config`` heard by ``model``, in one of ``LOOPS``."""
    closed = loop == "closed"
    rng = random.Random(seed)
    listener = SimulatedListener(model, rng)
    length_s = config.minutes * 60
    state = new_session_state("", config)
    kind = RATE_KINDS[config.signal]
    pieces: list[Piece] = []
    if not closed:
        clock = 0.0
        for step in plan_session(
            config.start_state, config.target_state, minutes=config.minutes, bars=config.piece_bars
        ):
            tempo = ending_tempo_map(step.tempo_bpm, METER, step.bars, ritardando=loop == "open")
            duration = tempo.seconds_at(step.bars * METER.bar_ticks)
            pieces.append(Piece(clock, tempo, duration))
            # today's join: the final chord is held past the barline, the next piece comes
            # in over the crossfade after it (its 2 s overlap the 2 s release tail)
            held = fermata_ticks(METER) * 60.0 / (TICKS_PER_QUARTER * tempo.changes[-1][1])
            clock += duration + held
    rates: list[float] = []
    second = 0
    finished = not closed
    while True:
        now_s = float(second)
        # closed loop: piece i + 1 is decided when piece i starts (one piece composed ahead)
        while not finished and (not pieces or now_s >= pieces[-1].start_s):
            finished = _decide(config, state, pieces, second)
        if finished and now_s >= pieces[-1].start_s + pieces[-1].duration_s:
            break
        piece = _playing(pieces, now_s)
        listener.advance(piece.bpm_at(now_s - piece.start_s) if piece else None, 1.0)
        rates.append(listener.rate_bpm)
        if second % max(int(model.reading_seconds), 1) == 0:
            reading = listener.reading(now_s)
            if reading is not None:
                signal = st.ListenerSignal(
                    station="bench",
                    measured_unix_ns=BASE_NS + second * 1_000_000_000,
                    kind=kind,
                    value=min(max(reading, 40.0), 220.0),
                )
                take_signal(state, config, check_signal(signal, now_ns=signal.measured_unix_ns))
        second += 1
        if second > 3 * length_s:
            break
    return SessionRun(rates, pieces, config.target[0], model.start_bpm, length_s)


def _decide(
    config: SessionConfig, state: st.SessionState, pieces: list[Piece], second: int
) -> bool:
    """Append the next closed-loop piece; True when it is the last."""
    # a piece that is not the last has no ritardando: it ends on its ramp's last tempo
    previous = pieces[-1].tempo.changes[-1][1] if pieces else 0.0
    decision = next_step(
        config,
        state,
        index=len(pieces),
        previous_end_bpm=previous,
        now_ns=BASE_NS + second * 1_000_000_000,
    )
    step = decision.step
    tempo = ending_tempo_map(
        step.tempo_bpm, METER, step.bars, tempo_end_bpm=step.tempo_end_bpm, ritardando=step.last
    )
    start = pieces[-1].start_s + pieces[-1].duration_s if pieces else 0.0
    pieces.append(Piece(start, tempo, tempo.seconds_at(step.bars * METER.bar_ticks)))
    return step.last


def _playing(pieces: list[Piece], now_s: float) -> Piece | None:
    for piece in pieces:
        if piece.start_s <= now_s < piece.start_s + piece.duration_s:
            return piece
    return None


@dataclass
class LoopResult:
    runs: list[SessionRun]

    def summary(self) -> dict[str, float]:
        converged = [c for c in (r.converged_s() for r in self.runs) if c is not None]
        overshoots = [r.overshoot_bpm() for r in self.runs]
        steps = [r.largest_steps_bpm() for r in self.runs]
        return {
            "reached": len(converged) / len(self.runs),
            "median_convergence_s": statistics.median(converged) if converged else float("nan"),
            "median_overshoot_bpm": statistics.median(overshoots),
            "max_overshoot_bpm": max(overshoots),
            "max_step_within_bpm": max(s[0] for s in steps),
            "max_step_between_bpm": max(s[1] for s in steps),
            "median_end_error_s": statistics.median(abs(r.end_s - r.length_s) for r in self.runs),
        }


def run_therapy_bench(
    listeners: int = 30, seed: int = 17, presets: tuple[str, ...] = tuple(SCENARIOS)
) -> dict[str, dict[str, LoopResult]]:
    """Per preset: the open and the closed loop on the same ``listeners`` listeners."""
    results: dict[str, dict[str, LoopResult]] = {}
    for offset, name in enumerate(presets):
        config = session_config(name)
        assert config.signal is not RateSignal.MOOD
        scenario = SCENARIOS[name]
        models = population(
            config.start[0],
            count=listeners,
            seed=seed + offset,
            floor_bpm=float(scenario["floor_bpm"]),  # type: ignore[arg-type]
            follow_seconds=scenario["follow_seconds"],  # type: ignore[arg-type]
            reading_seconds=float(scenario["reading_seconds"]),  # type: ignore[arg-type]
        )
        results[name] = {
            loop: LoopResult(
                [
                    simulate(config, model, loop=loop, seed=seed * 1000 + i)
                    for i, model in enumerate(models)
                ]
            )
            for loop in LOOPS
        }
    return results


def format_report(results: dict[str, dict[str, LoopResult]], listeners: int, seed: int) -> str:
    lines = [
        "| preset | loop | reached target | median time to target | overshoot median / max "
        "| largest step heard: within a piece / between pieces | end vs length (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, loops in results.items():
        config = PRESETS[name]
        for loop, result in loops.items():
            s = result.summary()
            time_text = (
                "—"
                if s["median_convergence_s"] != s["median_convergence_s"]
                else f"{s['median_convergence_s'] / 60:.1f} min"
            )
            lines.append(
                f"| {name} ({config['mode']}, {config['signal']}) | {loop} "
                f"| {s['reached']:.0%} | {time_text} "
                f"| {s['median_overshoot_bpm']:.1f} / {s['max_overshoot_bpm']:.1f} BPM "
                f"| {s['max_step_within_bpm']:.1f} / {s['max_step_between_bpm']:.1f} BPM "
                f"| {s['median_end_error_s']:.1f} s |"
            )
    legend = f"""
{listeners} simulated listeners per preset, seed {seed}; the same listeners and sensor
noise for every loop. The listener model is `cantus.stations.listeners` (a rate that follows
the music's tempo with lag only while it is within the listener's entrainment basin of
6-12 %, else drifts back to its own; readings with noise, 3 % outliers and a 90 s dropout);
each listener's real start is up to 12 % off the preset's assumed start, which is all the
open-loop plan knows. Walk entrains cadence (2 s readings, lag 10-30 s); relax and sleep
follow heart rate (5 s readings, lag 40-90 s and 60-120 s).

* *open*: today's plan, every piece at its step's tempo closing with the form's
  ritardando (to 70 % over two bars), so the tempo falls and jumps back at each piece,
  after the final chord held half a bar without a beat.
* *open, no ritardando*: the same plan with smooth pieces (the held chord between pieces
  kept): how much smooth pieces alone buy.
* *closed*: `cantus.stations.control` per piece, decided one piece ahead, ramped beat by
  beat, within the preset's bounds, joined on the beat.

*Reached target*: within ±3 % of the target rate from some time on, until the last
piece's closing ritardando (the ending all loops share). *Overshoot*: the furthest the rate
went past the target. *Largest step heard*: the largest tempo change from one beat to the
next inside a piece (the last piece's closing ritardando left out) and from one piece's
end to the next one's start. *End vs length*: how far the music's end
is from the session's length.
"""
    return "\n".join(lines) + "\n" + legend
