"""A session's stream at its start, on the station's own code and a real encoder (#17).

A session holds its 20 s prebuffer in hand (``cantus.stations.intensity``): its intensity
stage releases only the lead (8 s) ahead of playback, so an intensity change is heard
within seconds, where a station publishes its whole prebuffer before playback starts. The
price is a thinner stream: a session's published audio is only the lead, less the segment
the encoder holds, ahead of playback, against a station's prebuffer and more. This bench
measures whether that thinner stream runs dry (an underrun: playback would pass the
stream's end) in a session's first ``seconds``, side by side with a station fed the same
audio at the same time.

What runs is the station service's own path (``services.station.app.StationWorker``): its
mixer, the intensity stage and ``release_horizon``, its playback clock
(``StationWorker.clock``: ``Program.start_playback`` and ``Program.tick``, which counts
underruns), one long-lived ``ffmpeg`` encoding AAC and cutting 4 s MPEG-TS segments
(``HlsSegmenter``), and ``_publish_segments``, which publishes each segment and moves the
stream's end. Two things are not the stack's: the segments go to a list instead of Kafka,
and the pieces' audio arrives as render would send it, in 4-bar segments at a fixed
real-time factor (a steady tone instead of music: AAC costs the same), instead of from the
render service. An intensity signal is sent once playback is ``signal_after`` seconds in,
and the delay the station logs for it (``Adjustment.heard_after_seconds``) is reported: the
release lead as a real encoder and clock give it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARMS = ("session", "station")
PRESET = "focus"
"""The session the bench starts: the preset whose listeners ask for intensity."""
STATION_YAML = "styles: {folk: 1}\nbars: 8\nmeters: ['4/4']\n"
"""What the gateway gives a session's station (PlanSession: the style, bars, 4/4)."""


@dataclass
class StreamRun:
    """One arm's stream: when playback started (seconds after the first audio was fed), its
    underruns, and the least audio ahead of playback after it started: published, and in
    hand (published, held by the intensity stage and in the encoder)."""

    arm: str
    seconds: float
    first_segment_s: float = math.nan
    playback_started_s: float = math.nan
    underruns: int = 0
    least_published_ahead_s: float = math.inf
    least_in_hand_ahead_s: float = math.inf
    segments: int = 0
    heard_after_s: float = math.nan
    ahead: list[float] = field(default_factory=list)


def piece_seconds(tempo_bpm: float, bars: int) -> float:
    """Seconds of ``bars`` bars of 4/4 at ``tempo_bpm``."""
    return bars * 4 * 60.0 / tempo_bpm


async def run_arm(
    arm: str,
    workdir: Path,
    *,
    seconds: float,
    render_rtf: float,
    signal_after: float,
    started: float,
) -> StreamRun:
    """Feed pieces as render sends them for ``seconds`` of wall time, the clock ticking as
    the station's does; return what the stream did."""
    from cantus.settings import Settings
    from cantus.stations.encoding import HlsSegmenter
    from cantus.stations.feeds import playback_seconds
    from cantus.stations.program import new_status
    from cantus.stations.sessions import session_config, session_config_to_yaml
    from cantus.stations.signals import new_session_state
    from cantus.v1 import station_pb2 as st
    from services.station.app import SAMPLE_RATE, TICK_SECONDS, StationWorker

    outcomes: list[st.OutcomeRecord] = []

    async def publish_station(kind: str, message, station: str) -> None:
        if kind == "station_outcome":
            outcomes.append(message)

    async def publish_state(status) -> None:
        return None

    service = types.SimpleNamespace(
        settings=Settings(),
        owners={},
        publish_station=publish_station,
        publish_state=publish_state,
    )
    session = None
    if arm == "session":
        config = session_config(PRESET)
        session = new_session_state(session_config_to_yaml(config), config)
    status = new_status(f"bench-{arm}", STATION_YAML, [], session)
    status.running = True
    worker = StationWorker(service, status)  # type: ignore[arg-type]
    program = worker.program
    worker.segmenter = HlsSegmenter(
        workdir / arm,
        sample_rate=SAMPLE_RATE,
        segment_seconds=program.config.segment_seconds,
        first_sequence=0,
    )
    await worker.segmenter.start()
    publisher = asyncio.create_task(worker._publish_segments())
    run = StreamRun(arm, seconds)

    async def feed() -> None:
        # pieces of the preset's tempo and length, each rendered in 4-bar segments that
        # arrive as fast as render_rtf allows, one after another
        tempo, bars = 100.0, 8
        chunk = piece_seconds(tempo, 4)
        t = np.arange(round(chunk * SAMPLE_RATE)) / SAMPLE_RATE
        tone = (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
        frames = np.stack([tone, tone], axis=1)
        index = 0
        while True:
            entry = st.ProgramEntry(piece_id=f"p{index}", stream_start_seconds=-1)
            for _ in range(bars // 4):
                await asyncio.sleep(chunk / render_rtf)
                async with worker._lock:
                    await worker._write(entry, frames)
            worker.mixer.start_piece()
            index += 1

    async def clock() -> None:
        signalled = False
        while time.monotonic() - started < seconds:
            if feeder.done():  # it failed: its error, not a silent stream
                feeder.result()
            async with worker._lock:
                worker.clock()
                await worker._release()
                if status.next_segment and math.isnan(run.first_segment_s):
                    run.first_segment_s = time.monotonic() - started
                if status.stream_started_unix_ns:
                    if math.isnan(run.playback_started_s):
                        run.playback_started_s = time.monotonic() - started
                    playing = playback_seconds(status)
                    run.least_published_ahead_s = min(
                        run.least_published_ahead_s, status.stream_seconds - playing
                    )
                    in_hand = status.stream_seconds + worker.held_seconds - playing
                    run.least_in_hand_ahead_s = min(run.least_in_hand_ahead_s, in_hand)
                    run.ahead.append(status.stream_seconds - playing)
            if (
                session is not None
                and not signalled
                and status.stream_started_unix_ns
                and playback_seconds(status) >= signal_after
            ):
                signal = st.ListenerSignal(
                    station=status.name,
                    measured_unix_ns=time.time_ns(),
                    kind=st.INTENSITY,
                    value=0.8,
                )
                await worker.on_signal(signal)
                signalled = True
            await asyncio.sleep(TICK_SECONDS)

    feeder = asyncio.create_task(feed())
    try:
        await clock()
    finally:
        feeder.cancel()
        publisher.cancel()
        for task in (feeder, publisher):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await worker.segmenter.close()
    run.underruns = status.underruns
    run.segments = status.next_segment
    changes = [o.adjustment for o in outcomes if o.WhichOneof("what") == "adjustment"]
    if changes:
        run.heard_after_s = changes[0].heard_after_seconds
    return run


SIGNAL_AFTER_S = 2.0
"""Playback seconds before the session's intensity signal."""


def run_session_stream_bench(
    seconds: float = 90.0, *, render_rtf: float = 1.35, signal_after: float = SIGNAL_AFTER_S
) -> list[StreamRun]:
    """A session and a station side by side, fed the same audio at the same time."""

    async def both() -> list[StreamRun]:
        with tempfile.TemporaryDirectory(prefix="cantus-session-stream-") as tmp:
            started = time.monotonic()
            return list(
                await asyncio.gather(
                    *(
                        run_arm(
                            arm,
                            Path(tmp),
                            seconds=seconds,
                            render_rtf=render_rtf,
                            signal_after=signal_after,
                            started=started,
                        )
                        for arm in ARMS
                    )
                )
            )

    return asyncio.run(both())


def format_stream_section(
    runs: list[StreamRun],
    *,
    render_rtf: float,
    load: tuple[float, ...],
    signal_after: float = SIGNAL_AFTER_S,
) -> str:
    def seconds(value: float) -> str:
        return "—" if not math.isfinite(value) else f"{value:.1f} s"

    rows = [
        f"| {r.arm} | {seconds(r.first_segment_s)} | {seconds(r.playback_started_s)} | "
        f"{r.underruns} | "
        f"{seconds(r.least_published_ahead_s)} | {seconds(r.least_in_hand_ahead_s)} | "
        f"{r.segments} | {seconds(r.heard_after_s) if r.arm == 'session' else '—'} |"
        for r in runs
    ]
    span = runs[0].seconds if runs else 0.0
    return "\n".join(
        [
            "## A session's stream at its start: underruns",
            "",
            "| stream | first segment out after | playback starts after | underruns | "
            "least published ahead of playback | least in hand ahead of playback | segments | "
            "intensity heard after |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"The first {span:g} s of a {PRESET} session and of a station, side by side on "
            "the station service's own stream path (`cantus.bench.session_stream`: "
            "`StationWorker`'s mixer, intensity stage, playback clock and segment "
            "publishing) with a real `ffmpeg` encoder (AAC, 4 s MPEG-TS segments), fed the "
            "same audio at the same time: 8-bar pieces at 100 BPM arriving in 4-bar "
            f"segments at {render_rtf:g}x real time (the station bench's 8-station figure, "
            "`docs/results/station_bench.md`); the segments go to a list, not Kafka. "
            "Times are wall-clock seconds from the first audio fed. "
            "*Underruns*: times playback would have passed the stream's end "
            "(`Program.tick`). *Published ahead*: the stream's end less playback; "
            "*in hand*: that plus what the intensity stage and the encoder hold. The session "
            "starts once a segment is out and 20 s are in hand, and releases only the 8 s "
            f"lead ahead; its intensity signal was sent {signal_after:g} s into playback "
            "(heard after: `Adjustment.heard_after_seconds`, as the station logs it). "
            f"Load average {', '.join(f'{x:.1f}' for x in load)} (1, 5, 15 min) at the end, "
            "on 2 shared cores.",
            "",
        ]
    )


def machine_load() -> tuple[float, ...]:
    return tuple(os.getloadavg())
