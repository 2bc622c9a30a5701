"""``cantus bench station --stations S``: how many stations one machine keeps in real time.

Runs through the running stack in two phases, side by side in one run: a baseline of one
station, then S stations at once, each for ``minutes``. Every second it reads each station's
snapshot (``GetStation``). A station *sustains real time* when, once its stream has started,
playback never runs dry (no underrun) — its buffer of composed pieces stays ahead of the
listener. Reported per phase: stations sustained, the real-time factor (stream audio produced
per wall-clock second, per station: 1.0 is just enough), the least and median audio ahead of
playback, and the time to the first audio. The S-station real-time factor is also given as a
ratio of the one-station baseline measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cantus.bench.stack_cpu import CpuSnapshot, machine_busy_seconds
from cantus.bench.station_profile import (
    Sampler,
    StationProfile,
    component_rss,
    process_table,
    spent_between,
)
from cantus.settings import load_settings
from cantus.stack import Stack
from cantus.v1 import station_pb2 as st
from cantus.v1 import station_pb2_grpc as st_grpc

BENCH_CONFIG = """
styles: {{folk: 1, celtic: 1}}
tempo_bpm: [90, 120]
meters: ['4/4']
bars: {bars}
buffer_pieces: {buffer}
"""


@dataclass
class PhaseResult:
    stations: int
    minutes: float
    sustained: int = 0
    realtime_factors: list[float] = field(default_factory=list)
    min_ahead_s: list[float] = field(default_factory=list)
    median_ahead_s: list[float] = field(default_factory=list)
    first_audio_s: list[float] = field(default_factory=list)
    underruns: list[int] = field(default_factory=list)
    pieces: int = 0
    rejected: int = 0
    stream_seconds: float = 0.0
    """Audio the stations published, all together."""
    late_first_audio_s: float | None = None
    """First audio of one more station started halfway through the phase, at its load
    (seconds from its start; nan if it had none by the end); None when none was started."""


def run_phase(
    stub: st_grpc.StationStub,
    prefix: str,
    count: int,
    minutes: float,
    bars: int,
    buffer: int,
    *,
    late_station: bool = False,
) -> PhaseResult:
    """``count`` stations for ``minutes``; with ``late_station``, one more is started
    halfway through, and the time to its first audio is what a new station waits at that
    load (it is left out of the other figures)."""
    names = [f"{prefix}-{i}" for i in range(count)]
    late_name = f"{prefix}-late"
    late_started: float | None = None
    late_first: float | None = None
    config = BENCH_CONFIG.format(bars=bars, buffer=buffer)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(count, 16)) as pool:
        list(
            pool.map(
                lambda n: stub.StartStation(
                    st.StartStationRequest(name=n, config_yaml=config), timeout=60
                ),
                names,
            )
        )
    ahead: dict[str, list[float]] = {n: [] for n in names}
    first_audio: dict[str, float] = {}
    last: dict[str, st.StationStatus] = {}
    deadline = started + minutes * 60
    while time.monotonic() < deadline:
        now = time.monotonic()
        if late_station and late_started is None and now - started >= minutes * 30:
            stub.StartStation(
                st.StartStationRequest(name=late_name, config_yaml=config), timeout=60
            )
            late_started = time.monotonic()
        if late_started is not None and late_first is None:
            status = stub.GetStation(st.StationName(name=late_name), timeout=30)
            if status.stream_started_unix_ns:
                late_first = time.monotonic() - late_started
        for name in names:
            status = stub.GetStation(st.StationName(name=name), timeout=30)
            last[name] = status
            if status.stream_started_unix_ns:
                first_audio.setdefault(name, time.monotonic() - started)
                ahead[name].append(status.ahead_seconds)
        time.sleep(1.0)
    wall = time.monotonic() - started
    result = PhaseResult(stations=count, minutes=minutes)
    if late_started is not None:
        stub.StopStation(st.StationName(name=late_name), timeout=60)
        result.late_first_audio_s = float("nan") if late_first is None else late_first
    for name in names:
        stub.StopStation(st.StationName(name=name), timeout=60)
        status = last[name]
        streaming_for = wall - first_audio.get(name, wall)
        result.realtime_factors.append(
            status.stream_seconds / streaming_for if streaming_for > 0 else 0.0
        )
        result.underruns.append(status.underruns)
        result.stream_seconds += status.stream_seconds
        result.min_ahead_s.append(min(ahead[name], default=0.0))
        result.median_ahead_s.append(statistics.median(ahead[name]) if ahead[name] else 0.0)
        result.first_audio_s.append(first_audio.get(name, float("nan")))
        result.pieces += sum(1 for e in status.program if e.status == "streamed")
        result.rejected += sum(1 for e in status.program if e.status == "rejected")
        if name in first_audio and status.underruns == 0:
            result.sustained += 1
    return result


def run_station_bench(
    address: str,
    *,
    stations: int,
    minutes: float,
    bars: int,
    buffer: int,
    profile_dir: Path | None = None,
) -> tuple[PhaseResult, PhaseResult, StationProfile | None]:
    """The two phases; with ``profile_dir``, the loaded phase is profiled
    (``cantus.bench.station_profile``: py-spy's folded stacks are written there)."""
    stack = Stack(load_settings()) if profile_dir is not None else None
    profile = None
    with grpc.insecure_channel(address) as channel:
        stub = st_grpc.StationStub(channel)
        tag = time.strftime("%H%M%S")
        if stack is not None:
            idle = idle_percent(stack, IDLE_SECONDS)
            floor = synthesis_floor()
        baseline = run_phase(stub, f"bench{tag}-one", 1, minutes, bars, buffer)
        if stack is None or profile_dir is None:
            loaded = run_phase(
                stub, f"bench{tag}-many", stations, minutes, bars, buffer, late_station=True
            )
        else:
            before, busy_before = process_table(stack), machine_busy_seconds()
            sampler = Sampler(before, profile_dir)
            started = time.monotonic()
            rss_start = component_rss(before)
            try:
                loaded = run_phase(
                    stub, f"bench{tag}-many", stations, minutes, bars, buffer, late_station=True
                )
            finally:
                sampler.stop()
            wall = time.monotonic() - started
            after = process_table(stack)
            spent = spent_between(before, after)
            sampler.attach(spent)
            profile = StationProfile(
                stations=stations,
                wall_seconds=wall,
                stream_seconds=loaded.stream_seconds,
                processes=spent,
                machine_busy=machine_busy_seconds() - busy_before,
                idle_percent=idle,
                synthesis_floor=floor,
                rss_start_mb=rss_start,
                rss_end_mb=component_rss(after),
            )
    return baseline, loaded, profile


IDLE_SECONDS = 20.0


def idle_percent(stack: Stack, seconds: float) -> dict[str, float]:
    """Each component's CPU over ``seconds`` with nothing to do, in percent of one core."""
    before = CpuSnapshot.take(stack)
    time.sleep(seconds)
    spent = CpuSnapshot.take(stack).since(before)
    return {
        name: 100 * value / seconds
        for name, value in sorted(spent.components.items(), key=lambda item: -item[1])
    }


def synthesis_floor(pieces: int = 2) -> float:
    """CPU seconds of FluidSynth synthesis alone per minute of audio: 16-bar form pieces
    through the render service's handler in this process (``cantus.bench.render_profile``)."""
    from cantus.bench.render_profile import run_render_profile

    profile = run_render_profile(pieces)
    return profile.steps.get("synthesis", 0.0) / profile.audio_seconds * 60.0


def _row(label: str, r: PhaseResult) -> str:
    rtf = statistics.median(r.realtime_factors)
    return (
        f"| {label} | {r.stations} | {r.sustained}/{r.stations} | {rtf:.2f} "
        f"(min {min(r.realtime_factors):.2f}) | {min(r.min_ahead_s):.1f} | "
        f"{statistics.median(r.median_ahead_s):.1f} | "
        f"{statistics.median(r.first_audio_s):.1f} | {sum(r.underruns)} | {r.pieces} | "
        f"{r.rejected} |"
    )


def format_report(
    baseline: PhaseResult, loaded: PhaseResult, *, command: str, bars: int, buffer: int
) -> str:
    ratio = statistics.median(loaded.realtime_factors) / max(
        statistics.median(baseline.realtime_factors), 1e-9
    )
    return "\n".join(
        [
            "# Station load benchmark",
            "",
            f"`{command}`",
            "",
            f"Each station: {bars}-bar pieces, a buffer of {buffer} pieces ahead of playback, "
            f"HLS (AAC) encoding; {loaded.minutes:g} minutes per phase. A station is "
            "*sustained* when its playback never ran dry after its stream started.",
            "",
            "| phase | stations | sustained | real-time factor, median | least ahead (s) | "
            "median ahead (s) | first audio (s) | underruns | pieces streamed | rejected |",
            "|---|---|---|---|---|---|---|---|---|---|",
            _row("baseline: one station", baseline),
            _row(f"{loaded.stations} stations at once", loaded),
            "",
            *(
                [
                    f"A station started halfway through the {loaded.stations}-station phase "
                    f"had its first audio after **{loaded.late_first_audio_s:.1f} s** (one "
                    f"station alone: {statistics.median(baseline.first_audio_s):.1f} s).",
                    "",
                ]
                if loaded.late_first_audio_s is not None
                else []
            ),
            f"Real-time factor of {loaded.stations} stations against one, same run: "
            f"**{ratio:.2f}×**. A factor ≥ 1.0 means a station produces audio at least as fast "
            "as it is played; the buffer absorbs the start-up and the variance.",
            "",
        ]
    )
