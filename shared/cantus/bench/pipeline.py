"""``cantus bench pipeline``: compose N pieces, C at a time, through the running gateway and
read time to first bar and per-stage latency off the events' own timestamps.

Stages, per bar or segment (all from ``meta.produced_at`` / ``meta.received_at``):
* time to first bar — request published → melody bar 0 published;
* melody per bar — previous melody event → this bar (decode time of one bar);
* harmony / lyric — melody bar published → its harmony bar / lyric line published
  (broker transit included);
* harmony / lyric processing — input received → output published (service time only);
* render segment — last input of the segment published → segment published;
* end to end — request published → piece completed.

Beside the latencies: the CPU seconds each component of the embedded stack spent per piece
during the run, and how busy the rest of the machine was (``cantus.bench.stack_cpu``), since
on a shared machine other work takes cores from the stack.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Protocol

from cantus.bench.stack_cpu import CpuSnapshot
from cantus.cli.compose import compose
from cantus.v1 import composer_pb2 as api
from cantus.v1.events_pb2 import EventMeta, RenderSegment


@dataclass
class PipelineReport:
    pieces: int
    concurrency: int
    bars: int
    wall_seconds: float
    failures: list[str] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu: CpuSnapshot | None = None
    """CPU seconds spent during the run, per stack component and machine-wide."""
    load_average: tuple[float, float] = (0.0, 0.0)
    """The machine's one-minute load average at the start and at the end."""
    lyrics: str = ""
    """The lyrics theme (and language) every piece asked for; empty: none."""


def _ms(later_ns: int, earlier_ns: int) -> float:
    return (later_ns - earlier_ns) / 1e6


class _Event(Protocol):
    """What every piece event message has (the generated classes share no such base)."""

    @property
    def meta(self) -> EventMeta: ...


def stage_latencies(events: list[api.PieceEvent]) -> dict[str, list[float]]:
    """Latencies in milliseconds, by stage name, for one piece's events."""
    by_kind: dict[str, dict[int, _Event]] = {}
    segments: dict[int, RenderSegment] = {}
    for event in events:
        kind = event.WhichOneof("event")
        message = getattr(event, kind)
        by_kind.setdefault(kind, {})[message.meta.index] = message
        if kind == "render_segment":
            segments[event.render_segment.meta.index] = event.render_segment
    stages: dict[str, list[float]] = {}

    def add(stage: str, value: float) -> None:
        stages.setdefault(stage, []).append(value)

    requested = by_kind["requested"][0].meta
    melody = by_kind.get("melody_bar", {})
    if 0 in melody:
        add(
            "time to first bar",
            _ms(melody[0].meta.produced_at_unix_ns, requested.produced_at_unix_ns),
        )
    previous = requested.produced_at_unix_ns
    for index in sorted(melody):
        produced = melody[index].meta.produced_at_unix_ns
        add("melody, per bar", _ms(produced, previous))
        previous = produced
    for kind, stage in (("harmony_bar", "harmony"), ("lyric_line", "lyric")):
        for index, message in by_kind.get(kind, {}).items():
            meta = message.meta
            if index in melody:
                add(
                    f"{stage}, after melody bar",
                    _ms(meta.produced_at_unix_ns, melody[index].meta.produced_at_unix_ns),
                )
            add(f"{stage}, processing", _ms(meta.produced_at_unix_ns, meta.received_at_unix_ns))
    harmony = by_kind.get("harmony_bar", {})
    lyrics = by_kind.get("lyric_line", {})
    for segment in segments.values():
        inputs = [
            source[i].meta.produced_at_unix_ns
            for i in range(segment.first_bar, segment.first_bar + segment.bar_count)
            for source in (melody, harmony, lyrics)
            if i in source
        ]
        if inputs:
            add(
                "render segment, after last input",
                _ms(segment.meta.produced_at_unix_ns, max(inputs)),
            )
    completed = by_kind.get("completed", {})
    for message in completed.values():
        add("end to end", _ms(message.meta.produced_at_unix_ns, requested.produced_at_unix_ns))
    return stages


def run_pipeline_bench(
    address: str,
    *,
    pieces: int,
    concurrency: int,
    bars: int,
    seed: int = 1000,
    lyrics_theme: str = "",
    lyrics_language: str = "",
) -> PipelineReport:
    """``pieces`` requests through the gateway at ``address``, ``concurrency`` at a time;
    with ``lyrics_theme``, every piece also asks for lyrics on it (in ``lyrics_language``;
    "": English), so the lyric service's share of the stack's work is in the figures."""
    report = PipelineReport(
        pieces=pieces,
        concurrency=concurrency,
        bars=bars,
        wall_seconds=0.0,
        lyrics=f"{lyrics_theme} ({lyrics_language or 'en'})" if lyrics_theme else "",
    )
    styles = ("folk", "celtic", "chorale")
    moods = ("calm", "happy", "energetic")
    with TemporaryDirectory() as tmp:

        def one(i: int):
            request = api.ComposeRequest(
                bars=bars,
                seed=seed + i,
                style=styles[i % 3],
                mood=moods[i % 3],
                key=("C", "G", "D", "F")[i % 4],
                lyrics_theme=lyrics_theme,
                lyrics_language=lyrics_language,
            )
            return compose(address, request, Path(tmp))

        stack = _running_stack()
        before = CpuSnapshot.take(stack) if stack else None
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(one, i) for i in range(pieces)]
            for future in futures:
                try:
                    piece = future.result()
                except Exception as error:  # report, don't stop the benchmark
                    report.failures.append(str(error))
                    continue
                for stage, values in stage_latencies(piece.events).items():
                    report.stages_ms.setdefault(stage, []).extend(values)
        report.wall_seconds = time.monotonic() - started
        if stack and before is not None:
            report.cpu = CpuSnapshot.take(stack).since(before)
        report.load_average = (load_before, os.getloadavg()[0])
    return report


def _running_stack():
    """The embedded stack ``cantus up`` started, or None (a remote gateway)."""
    from cantus.settings import load_settings
    from cantus.stack import Stack

    stack = Stack(load_settings())
    return stack if stack.components() else None


def _percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def format_report(report: PipelineReport, *, command: str) -> str:
    done = report.pieces - len(report.failures)
    lines = [
        "# Pipeline benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"{done}/{report.pieces} pieces of {report.bars} bars, {report.concurrency} at a time, "
        + (f"with lyrics on “{report.lyrics}”, " if report.lyrics else "")
        + f"in {report.wall_seconds:.1f} s ({done * 60 / max(report.wall_seconds, 1e-9):.1f} "
        "pieces per minute).",
        "",
        "| stage | n | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
    ]
    for stage, values in report.stages_ms.items():
        lines.append(
            f"| {stage} | {len(values)} | {_percentile(values, 50):.1f} | "
            f"{_percentile(values, 95):.1f} |"
        )
    lines += ["", *_cpu_lines(report, done)]
    if report.failures:
        lines += ["", "Failures:", *[f"- {failure}" for failure in report.failures]]
    return "\n".join(lines) + "\n"


def _cpu_lines(report: PipelineReport, done: int) -> list[str]:
    """Where the machine's CPU time went during the run, per piece."""
    start, end = report.load_average
    lines = [f"Load average (1 min) {start:.2f} at the start, {end:.2f} at the end."]
    cpu = report.cpu
    if cpu is None or not cpu.components or not done:
        return lines
    cores = os.cpu_count() or 1
    lines += [
        "",
        f"CPU during the run ({cores} cores, {cores * report.wall_seconds:.0f} core-seconds): "
        f"the stack {cpu.stack_total:.0f} s, the rest of the machine (other users, this "
        f"client) {cpu.elsewhere:.0f} s.",
        "",
        "| component | CPU s per piece |",
        "|---|---:|",
    ]
    for name, seconds in sorted(cpu.components.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {seconds / done:.2f} |")
    lines.append(f"| the stack | {cpu.stack_total / done:.2f} |")
    return lines
