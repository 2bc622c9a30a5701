"""``cantus bench soak``: stations for a while on a private stack, memory and descriptors
watched (#22).

The bench starts a private stack as ``cantus bench chaos`` does (supervisor included, nothing
killed), starts ``stations`` stations side by side (``cantus.bench.station.run_phase``) and,
every ``sample_s`` seconds, reads for each component of the stack its process group's
resident memory (the sum of VmRSS over its processes: Triton's model stubs count with
Triton) and open file descriptors, and the broker's store: with the default ``memory``
storage the broker holds its topics in its own memory, so its RSS is its "disk".

Memory is *flat* when the last quarter of the run's samples of a component lie within
``FLAT_TOLERANCE`` of its second quarter's (after the start-up's growth, before the end), or
grew by less than ``FLAT_MIN_MIB``.

At the end of the run, before the stack stops, it reads back every topic and counts what the
broker keeps, topic by topic (``cantus.bench.broker_usage``): the broker's growth, traced.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAT_TOLERANCE = 0.10
FLAT_MIN_MIB = 16.0


def group_pids(pgid: int, proc: Path = Path("/proc")) -> list[int]:
    """Every process whose process group is ``pgid`` (a component of the stack starts its
    own group; its children, such as Triton's Python model stubs, stay in it)."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp
            pids.append(int(entry.name))
    return pids


def rss_mib(pid: int, proc: Path = Path("/proc")) -> float:
    """Resident memory of one process, MiB (0 when it is gone)."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def open_fds(pid: int, proc: Path = Path("/proc")) -> int:
    try:
        return len(os.listdir(proc / str(pid) / "fd"))
    except OSError:
        return 0


@dataclass
class Sample:
    at_s: float
    rss_mib: dict[str, float]
    fds: dict[str, int]


def sample_stack(components: dict[str, int], started: float) -> Sample:
    """RSS and descriptors per component, each summed over its process group."""
    rss, fds = {}, {}
    for name, pgid in components.items():
        pids = group_pids(pgid)
        rss[name] = sum(rss_mib(pid) for pid in pids)
        fds[name] = sum(open_fds(pid) for pid in pids)
    return Sample(time.monotonic() - started, rss, fds)


def is_flat(values: list[float]) -> bool:
    """The last quarter's median within ``FLAT_TOLERANCE`` (or ``FLAT_MIN_MIB``) of the
    second quarter's: start-up growth left out, a steady leak caught."""
    if len(values) < 8:
        return False  # too few samples to say
    quarter = len(values) // 4
    early = statistics.median(values[quarter : 2 * quarter])
    late = statistics.median(values[-quarter:])
    return late - early <= max(FLAT_TOLERANCE * early, FLAT_MIN_MIB)


@dataclass
class SoakReport:
    stations: int
    minutes: float
    bars: int
    buffer: int
    samples: list[Sample] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    sustained: int = 0
    underruns: int = 0
    pieces: int = 0
    topics: list = field(default_factory=list)
    """``broker_usage.TopicUsage`` per topic at the end of the run."""
    error: str = ""


def run_soak_bench(
    *, stations: int, minutes: float, bars: int, buffer: int, sample_s: float = 10.0, log=print
) -> SoakReport:
    import grpc

    from cantus.bench.broker_usage import read_topic_usage
    from cantus.bench.chaos import campaign_environment, campaign_state_dir
    from cantus.bench.station import run_phase
    from cantus.settings import Settings
    from cantus.stack import Stack
    from cantus.supervisor import read_state
    from cantus.v1 import station_pb2_grpc as st_grpc

    report = SoakReport(stations=stations, minutes=minutes, bars=bars, buffer=buffer)
    with campaign_state_dir("cantus-soak-") as tmp:
        state_dir = Path(tmp)
        state_dir.mkdir(parents=True, exist_ok=True)
        saved = dict(os.environ)
        os.environ.update(campaign_environment(state_dir))
        stack = Stack(Settings(), owner=os.getpid())
        stop = threading.Event()
        try:
            log("starting a private stack with its supervisor…")
            stack.up(supervise=True)
            started = time.monotonic()

            def watch() -> None:
                while not stop.is_set():
                    components = {n: c.pid for n, c in stack.components().items()}
                    report.samples.append(sample_stack(components, started))
                    report.load.append(os.getloadavg()[0])
                    stop.wait(sample_s)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            address = f"{stack.settings.host}:{stack.settings.gateway_port}"
            with grpc.insecure_channel(address) as channel:
                phase = run_phase(
                    st_grpc.StationStub(channel), "soak", stations, minutes, bars, buffer
                )
            report.sustained, report.underruns = phase.sustained, sum(phase.underruns)
            report.pieces = phase.pieces
            stop.set()
            watcher.join(30)
            log("counting what the broker keeps…")
            report.topics = read_topic_usage(stack.settings.broker)
            state = read_state(stack.settings.run_dir) or {}
            report.restarts = {
                name: child["restarts"] for name, child in state.get("components", {}).items()
            }
        except Exception as error:  # reported, with what was sampled
            report.error = f"{type(error).__name__}: {error}"
        finally:
            stop.set()
            stack.down()
            os.environ.clear()
            os.environ.update(saved)
    return report


def format_report(report: SoakReport, *, command: str) -> str:
    samples = report.samples
    every = f" every {samples[1].at_s - samples[0].at_s:.0f} s" if len(samples) > 1 else ""
    lines = [
        "## Soak (#22)",
        "",
        f"Made by `{command}`: {report.stations} stations side by side for "
        f"{report.minutes:g} min ({report.bars}-bar pieces, {report.buffer} buffered) on a "
        f"private supervised stack; every component's process group sampled{every}.",
        "",
    ]
    if report.error:
        lines += [f"**The run failed:** {report.error}", ""]
    if not samples:
        return "\n".join([*lines, "No sample was taken.", ""])
    first, last = samples[0], samples[-1]
    lines += [
        f"Stations sustained: {report.sustained} of {report.stations}; underruns "
        f"{report.underruns}; pieces streamed {report.pieces}; restarts by the supervisor: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(report.restarts.items())) or 'none'}.",
        "",
        "| component | RSS at start (MiB) | RSS at end (MiB) | RSS max (MiB) | "
        "RSS at 1/4, 1/2, 3/4 of the run (MiB) | flat | open fds start / end / max |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in first.rss_mib:
        rss = [s.rss_mib.get(name, 0.0) for s in samples]
        fds = [s.fds.get(name, 0) for s in samples]
        marks = " / ".join(f"{rss[len(rss) * q // 4]:.0f}" for q in (1, 2, 3))
        lines.append(
            f"| {name} | {rss[0]:.0f} | {rss[-1]:.0f} | {max(rss):.0f} | {marks} | "
            f"{'yes' if is_flat(rss) else 'NO'} | {fds[0]} / {fds[-1]} / {max(fds)} |"
        )
    lines += [
        "",
        f"{len(samples)} samples over {last.at_s / 60:.1f} min. The broker runs on `memory` "
        "storage: its RSS is where its topics are (its disk). 1-minute load average on "
        f"{os.cpu_count()} cores: median {statistics.median(report.load):.1f}, max "
        f"{max(report.load):.1f}.",
        "",
    ]
    if report.topics:
        from cantus.bench.broker_usage import format_usage

        lines += [
            "What the broker keeps at the end, topic by topic (every record read back; keys, "
            "values and headers):",
            "",
            *format_usage(report.topics, pieces=report.pieces),
            "",
        ]
    return "\n".join(lines)
