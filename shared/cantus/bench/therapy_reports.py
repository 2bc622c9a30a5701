"""``cantus bench therapy``, second part: the focus preset steered by self-reports ("too
fast", "too slow", "more calm", mood) and intensity, on simulated listeners who say what
they want (``cantus.stations.listeners.ReportingModel``) instead of wearing a sensor.

Each listener hears the focus session three times:

* **open** — today's plan (steady tempo and energy, each piece closing with the form's
  ritardando); reports are sent and change nothing.
* **closed, intensity from the next piece** — ``cantus.stations.control.next_step`` per
  piece, the reports taken as the station takes them (``check_signal``, ``take_signal``);
  a piece is decided when the one before it starts, so an intensity change is heard from
  the next piece decided (how sessions behaved before intensity went mid-stream).
* **closed, intensity mid-stream** — the same, and an intensity change also re-levels the
  stream ``intensity_lead_seconds`` after it is asked for plus half the ramp
  (``cantus.stations.intensity``: the audio already released cannot change).

Reported per loop: listeners comfortable from some time on to the end (before the last
piece's closing ritardando), the median time that took, the median share of the session
they were comfortable, reports sent, how long after an intensity request (slider or "more
calm") the energy heard changed (median and largest), and the largest tempo step heard.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

from cantus.bench.therapy import BASE_NS, Piece, SessionRun, _playing
from cantus.music.notes import TICKS_PER_QUARTER
from cantus.render.arrangement import fermata_ticks
from cantus.render.tempo import ending_tempo_map
from cantus.stations.control import METER, next_step
from cantus.stations.intensity import RAMP_SECONDS, intensity_gain_db
from cantus.stations.listeners import (
    ENERGY_PER_DB,
    ReportingListener,
    ReportingModel,
    reporting_population,
)
from cantus.stations.plans import plan_session
from cantus.stations.sessions import SessionConfig, session_config
from cantus.stations.signals import check_signal, new_session_state, take_signal
from cantus.v1 import station_pb2 as st

REPORT_LOOPS = ("open", "closed, intensity from the next piece", "closed, intensity mid-stream")
PRESET = "focus"


@dataclass
class ReportRun:
    comfortable: list[bool]
    closing_s: int
    reports: int
    delays_s: list[float] = field(default_factory=list)
    """Per intensity request: seconds until the energy heard changed."""
    steps: tuple[float, float] = (0.0, 0.0)

    def comfortable_from_s(self) -> float | None:
        window = self.comfortable[: max(self.closing_s, 1)]
        if not window or not window[-1]:
            return None
        second = len(window) - 1
        while second > 0 and window[second - 1]:
            second -= 1
        return float(second)


def simulate_reports(
    config: SessionConfig, model: ReportingModel, *, loop: str, seed: int
) -> ReportRun:
    """One focus session of ``config`` heard by a reporting listener, in one of
    ``REPORT_LOOPS``."""
    closed = loop != "open"
    mid_stream = loop.endswith("mid-stream")
    rng = random.Random(seed)
    listener = ReportingListener(model, rng)
    state = new_session_state("", config)
    pieces: list[Piece] = []
    energies: list[float] = []
    if not closed:
        clock = 0.0
        for step in plan_session(
            config.start_state, config.target_state, minutes=config.minutes, bars=config.piece_bars
        ):
            tempo = ending_tempo_map(step.tempo_bpm, METER, step.bars, ritardando=True)
            duration = tempo.seconds_at(step.bars * METER.bar_ticks)
            pieces.append(Piece(clock, tempo, duration))
            energies.append(step.energy)
            held = fermata_ticks(METER) * 60.0 / (TICKS_PER_QUARTER * tempo.changes[-1][1])
            clock += duration + held
    level_changes: list[tuple[float, float]] = []  # (heard from, dB)
    comfortable: list[bool] = []
    pending: list[float] = []  # intensity requests waiting to be heard: (asked at, energy then)
    pending_energy: list[float] = []
    delays: list[float] = []
    reports = 0
    finished = not closed
    second, tempo_now, energy_piece = 0, config.start[0], config.start[1]
    while second <= 3 * config.minutes * 60:
        now_s = float(second)
        while not finished and (not pieces or now_s >= pieces[-1].start_s):
            finished = _decide(config, state, pieces, energies, second)
        if finished and now_s >= pieces[-1].start_s + pieces[-1].duration_s:
            break
        piece = _playing(pieces, now_s)
        if piece is not None:
            tempo_now = piece.bpm_at(now_s - piece.start_s)
            energy_piece = energies[pieces.index(piece)]
        level = next((db for at, db in reversed(level_changes) if at <= now_s), 0.0)
        energy = energy_piece + ENERGY_PER_DB * level
        for asked_at, before in zip(pending, pending_energy, strict=True):
            if abs(energy - before) > 0.005:
                delays.append(now_s - asked_at)
        kept = [(a, b) for a, b in zip(pending, pending_energy, strict=True)
                if abs(energy - b) <= 0.005]  # fmt: skip
        pending, pending_energy = [a for a, _ in kept], [b for _, b in kept]
        comfortable.append(listener.comfortable(tempo_now, energy))
        for kind, value, valence, arousal in listener.hear(now_s, tempo_now, energy, 1.0):
            reports += kind != "MOOD"
            signal = st.ListenerSignal(
                station="bench",
                measured_unix_ns=BASE_NS + second * 1_000_000_000,
                kind=st.SignalKind.Value(kind),
                value=value,
                valence=valence,
                arousal=arousal,
            )
            before = state.intensity
            take_signal(state, config, check_signal(signal, now_ns=signal.measured_unix_ns))
            if kind in ("INTENSITY", "MORE_CALM") and closed:
                pending.append(now_s)
                pending_energy.append(energy)
            if mid_stream and state.intensity != before:
                heard = now_s + config.intensity_lead_seconds + RAMP_SECONDS / 2
                level_changes.append((heard, intensity_gain_db(state.intensity)))
        second += 1
    run = SessionRun([], pieces, config.target[0], config.start[0], config.minutes * 60)
    return ReportRun(comfortable, run.closing_s, reports, delays, run.largest_steps_bpm())


def _decide(
    config: SessionConfig,
    state: st.SessionState,
    pieces: list[Piece],
    energies: list[float],
    second: int,
) -> bool:
    previous = pieces[-1].tempo.changes[-1][1] if pieces else 0.0
    step = next_step(
        config,
        state,
        index=len(pieces),
        previous_end_bpm=previous,
        now_ns=BASE_NS + second * 1_000_000_000,
    ).step
    tempo = ending_tempo_map(
        step.tempo_bpm, METER, step.bars, tempo_end_bpm=step.tempo_end_bpm, ritardando=step.last
    )
    start = pieces[-1].start_s + pieces[-1].duration_s if pieces else 0.0
    pieces.append(Piece(start, tempo, tempo.seconds_at(step.bars * METER.bar_ticks)))
    energies.append(step.energy)
    return step.last


def run_report_bench(
    listeners: int = 30, seed: int = 17, minutes: float | None = None
) -> dict[str, list[ReportRun]]:
    """The focus preset's loops on the same ``listeners`` reporting listeners."""
    config = session_config(PRESET, f"minutes: {minutes}" if minutes else "")
    models = reporting_population(
        config.start[0], config.start[1], count=listeners, seed=seed + 100
    )
    return {
        loop: [
            simulate_reports(config, model, loop=loop, seed=seed * 1000 + i)
            for i, model in enumerate(models)
        ]
        for loop in REPORT_LOOPS
    }


def format_report_section(results: dict[str, list[ReportRun]], listeners: int) -> str:
    config = session_config(PRESET)
    lines = [
        f"## Self-reports and intensity: the {PRESET} preset",
        "",
        "| loop | comfortable to the end | median time to comfort | median share comfortable "
        "| reports sent (median) | intensity asked → energy heard changes: median / max "
        "| largest step heard: within / between pieces |",
        "|---|---|---|---|---|---|---|",
    ]
    for loop, runs in results.items():
        reached = [c for c in (r.comfortable_from_s() for r in runs) if c is not None]
        shares = [sum(r.comfortable) / max(len(r.comfortable), 1) for r in runs]
        delays = [d for r in runs for d in r.delays_s]
        delay_text = (
            f"{statistics.median(delays):.1f} / {max(delays):.1f} s ({len(delays)} requests)"
            if delays
            else "never"
        )
        time_text = f"{statistics.median(reached) / 60:.1f} min" if reached else "—"
        lines.append(
            f"| {loop} | {len(reached) / len(runs):.0%} | {time_text} "
            f"| {statistics.median(shares):.0%} "
            f"| {statistics.median(r.reports for r in runs):.0f} | {delay_text} "
            f"| {max(r.steps[0] for r in runs):.1f} / {max(r.steps[1] for r in runs):.1f} BPM |"
        )
    lines += [
        "",
        f"{listeners} simulated listeners, each comfortable at a tempo up to 10 % and an "
        "energy up to 0.2 off the preset's (100 BPM, 0.4), within ±4 % and ±0.08 "
        "(`cantus.stations.listeners.ReportingModel`): after 10-40 s of discomfort they "
        "report once every 30-90 s at most: too fast / too slow, the intensity slider moved "
        "by 0.15, or more calm; and their mood every minute (arousal from the energy "
        f"heard). Energy heard = the piece's composed energy + {ENERGY_PER_DB:g} per dB of "
        "the stream's level (measured by `cantus eval energy`, docs/results/energy.md: "
        "pieces re-struck for the level change, assuming a louder stream is heard as the "
        "piece struck harder). The focus preset "
        "keeps the tempo within "
        f"{config.tempo_floor_bpm:g}..{config.tempo_ceiling_bpm:g} BPM and the energy within "
        f"{config.energy_floor:g}..{config.energy_ceiling:g}, so listeners whose comfort "
        "lies outside cannot be met. Mid-stream, a change is heard "
        f"{config.intensity_lead_seconds:g} s (the release lead) plus half the "
        f"{RAMP_SECONDS:g} s ramp after it is asked for, from the session's start (a "
        "session holds its 20 s prebuffer in hand and releases only the lead ahead, "
        "`cantus.stations.intensity`); from the next piece, when the piece "
        "decided after the request starts (a piece is decided one ahead).",
        "",
    ]
    return "\n".join(lines)
