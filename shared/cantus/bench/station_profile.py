"""Where a station's CPU goes: ``cantus bench station --profile`` (#20).

While the stations run, two real measurements are taken of the stack ``cantus up`` started:

* **/proc, per process.** Every process of every component's process group is read at the
  start and the end of the phase: the component itself, the programs it runs (ffmpeg,
  LilyPond) and, for Triton, one Python-backend stub per model, named by its model. What a
  component's reaped children spent (a segment's ffmpeg encode) is its ``programs run``.
* **py-spy, per Python process.** Each service and each Triton model stub is sampled for the
  length of the phase (``--nonblocking``, ``--format raw``: folded stacks). A sample is
  charged to a step by the first rule of ``STEP_RULES`` that matches a frame, from the leaf
  up (a numpy call inside the mixer is mixing). Each process's measured CPU seconds are then
  split over its steps by their share of the samples; py-spy counts only threads that run,
  so waiting threads do not dilute the shares.

The report gives CPU seconds per minute of station audio (the audio the stations published)
by component, by process and by step, with the folded stacks kept for flame graphs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cantus.stack import Stack

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

STEP_RULES: tuple[tuple[str, str], ...] = (
    # Specific work first: a frame in these files names the step whatever calls it.
    ("render/synth.py", "synthesis (FluidSynth)"),
    ("fluidsynth", "synthesis (FluidSynth)"),
    ("render/vocals.py", "singing voice"),
    ("render/mix.py", "mixing and mastering"),
    ("render/mastering", "mixing and mastering"),
    ("pyloudnorm", "mixing and mastering"),
    ("pedalboard", "mixing and mastering"),
    ("render/exports.py", "audio encoding"),
    ("render/leadsheet.py", "lead sheet"),
    ("render/lilypond", "lead sheet"),
    ("music21", "lead sheet"),
    ("render/pianoroll.py", "pictures"),
    ("render/selfsim.py", "pictures"),
    ("matplotlib", "pictures"),
    ("render/arrangement.py", "arrangement"),
    ("render/grooves.py", "arrangement"),
    ("render/tempo.py", "arrangement"),
    ("midi_io.py", "MIDI"),
    ("mido/", "MIDI"),
    ("stations/encoding.py", "HLS packager (AAC via ffmpeg)"),
    ("stations/mixing.py", "station crossfade and mix"),
    ("stations/intensity.py", "station crossfade and mix"),
    ("_decode_segment_audio", "segment decode (Opus) and resample"),
    ("soundfile.py", "segment decode (Opus) and resample"),
    ("stations/measure.py", "station checks (MIDI measures)"),
    ("stations/novelty.py", "station checks (MIDI measures)"),
    ("storage.py", "piece store"),
    ("torch/", "model forward (torch)"),
    ("triton_python_backend_utils", "Triton IPC"),
    ("tritonclient", "Triton client"),
    ("google/protobuf", "protobuf"),
    ("SerializeToString", "protobuf"),
    ("ParseFromString", "protobuf"),
    ("json/", "JSON"),
    ("base64.py", "base64"),
    ("aiokafka/", "Kafka I/O (aiokafka)"),
    ("kafka/", "Kafka I/O (aiokafka)"),
    ("faust/", "Faust (agents, tables)"),
    ("mode/", "Faust (agents, tables)"),
    ("grpc/", "gRPC"),
    ("aiohttp/", "HTTP (aiohttp)"),
    ("prometheus_client", "metrics"),
    ("logging/", "logging"),
    ("asyncio/", "event loop"),
    ("selectors.py", "event loop"),
    ("threading.py", "threads"),
    ("concurrent/", "threads"),
)
"""(substring of a frame, step): the first rule matching a frame, leaf first, wins."""


def frame_step(frames: list[str]) -> str:
    """The step a folded stack (root first) is charged to."""
    for frame in reversed(frames):
        for needle, step in STEP_RULES:
            if needle in frame:
                return step
    for frame in reversed(frames):
        if "(" in frame:  # "function (file.py:line)": name the file it ran in
            where = frame[frame.rindex("(") + 1 :].split(":")[0]
            return f"other: {Path(where).name}"
    return "other"


def read_folded(text: str) -> Counter[str]:
    """Samples by step from py-spy's raw output (``frame;frame;… count`` per line)."""
    steps: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        steps[frame_step(stack.split(";"))] += int(count)
    return steps


@dataclass(frozen=True)
class ProcessCpu:
    """One process of the stack at one moment: CPU seconds of its own and its reaped children's."""

    component: str
    program: str
    own: float
    reaped: float
    python: bool


def _program_name(pid: int, comm: str) -> tuple[str, bool]:
    """A readable name for a process, and whether py-spy can sample it (a Python process)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm, False
    words = [a.decode(errors="replace") for a in args if a]
    if words and "triton_python_backend_stub" in words[0] and len(words) > 1:
        model = Path(words[1]).parent.parent.name  # triton_models/<model>/1/model.py
        return f"model {model}", True
    python = bool(words) and Path(words[0]).name.startswith("python")
    return comm, python


def process_table(stack: Stack) -> dict[int, ProcessCpu]:
    """Every live process of the stack's component groups, by pid."""
    groups = {component.pid: name for name, component in stack.components().items()}
    table: dict[int, ProcessCpu] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        group = int(fields[2])
        if group not in groups:
            continue
        pid = int(entry.name)
        program, python = _program_name(pid, comm)
        if pid == group:
            program = groups[group]
        table[pid] = ProcessCpu(
            component=groups[group],
            program=program,
            own=(int(fields[11]) + int(fields[12])) / _CLOCK_TICKS,
            reaped=(int(fields[13]) + int(fields[14])) / _CLOCK_TICKS,
            python=python,
        )
    return table


def component_rss(table: dict[int, ProcessCpu]) -> dict[str, float]:
    """Resident memory of each component's processes together, MiB."""
    from cantus.bench.clients import rss_mb

    totals: dict[str, float] = {}
    for pid, process in table.items():
        totals[process.component] = totals.get(process.component, 0.0) + rss_mb(pid)
    return totals


@dataclass
class ProcessSpent:
    """What one process spent during the phase."""

    pid: int
    component: str
    program: str
    own: float
    reaped: float
    steps: Counter[str] = field(default_factory=Counter)
    """py-spy samples by step (Python processes only)."""


def spent_between(
    before: dict[int, ProcessCpu], after: dict[int, ProcessCpu]
) -> list[ProcessSpent]:
    """CPU each process spent from ``before`` to ``after`` (a process born meanwhile from 0;
    one that ended meanwhile is in its parent's reaped time)."""
    spent = []
    for pid, now in after.items():
        then = before.get(pid)
        if then is not None and then.program != now.program:
            then = None  # the pid was reused
        spent.append(
            ProcessSpent(
                pid,
                now.component,
                now.program,
                now.own - (then.own if then else 0.0),
                now.reaped - (then.reaped if then else 0.0),
            )
        )
    return spent


class Sampler:
    """py-spy recording every Python process of the stack until ``stop``."""

    def __init__(self, table: dict[int, ProcessCpu], out_dir: Path, *, rate: int = 20) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[int, Path] = {}
        self.recorders: list[subprocess.Popen] = []
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        for pid, process in table.items():
            if not process.python:
                continue
            path = out_dir / f"{process.component}-{process.program.replace(' ', '_')}-{pid}.txt"
            self.files[pid] = path
            self.recorders.append(
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        str(rate),
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def stop(self) -> None:
        """End every recording (py-spy writes its file on SIGINT)."""
        for recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        for recorder in self.recorders:
            try:
                recorder.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                recorder.kill()

    def attach(self, spent: list[ProcessSpent]) -> None:
        for process in spent:
            path = self.files.get(process.pid)
            if path is not None and path.exists():
                process.steps = read_folded(path.read_text(errors="replace"))


@dataclass
class StationProfile:
    """The CPU of one loaded phase, per process and step, and what the stations streamed."""

    stations: int
    wall_seconds: float
    stream_seconds: float
    processes: list[ProcessSpent]
    machine_busy: float
    idle_percent: dict[str, float] = field(default_factory=dict)
    """Each component's CPU while no station ran (percent of one core): polling."""
    synthesis_floor: float | None = None
    """CPU seconds of synthesis alone per minute of audio, measured in the same run."""
    rss_start_mb: dict[str, float] = field(default_factory=dict)
    rss_end_mb: dict[str, float] = field(default_factory=dict)
    """Resident memory of each component (all its processes) at the phase's start and end."""

    @property
    def stream_minutes(self) -> float:
        return self.stream_seconds / 60.0

    @property
    def stack_cpu(self) -> float:
        return sum(p.own + p.reaped for p in self.processes)

    def per_minute(self, seconds: float) -> float:
        return seconds / self.stream_minutes if self.stream_minutes else float("nan")

    def by_component(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for process in self.processes:
            totals[process.component] = (
                totals.get(process.component, 0.0) + process.own + process.reaped
            )
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def steps(self, component: str) -> list[tuple[str, float]]:
        """(step, CPU seconds) of one component: its processes' samples scaled to their CPU,
        and what their reaped children ran."""
        seconds: defaultdict[str, float] = defaultdict(float)
        for process in self.processes:
            if process.component != component:
                continue
            samples = sum(process.steps.values())
            if samples:
                for step, count in process.steps.items():
                    label = step if process.program == component else f"{process.program}: {step}"
                    seconds[label] += process.own * count / samples
            else:
                seconds[process.program if process.program != component else "(not sampled)"] += (
                    process.own
                )
            if process.reaped > 0.005:
                seconds[f"{process.program}: programs run and reaped (ffmpeg, LilyPond)"] += (
                    process.reaped
                )
        ranked = sorted(seconds.items(), key=lambda item: -item[1])
        return [(step, s) for step, s in ranked if s >= 0.005]


def format_station_profile(profile: StationProfile, *, command: str, top: int = 12) -> str:
    """The profile as Markdown: components, then each component's steps."""
    total = profile.stack_cpu
    lines = [
        "# Station profile",
        "",
        f"`{command}`",
        "",
        f"{profile.stations} stations for {profile.wall_seconds:.0f} s streamed "
        f"{profile.stream_seconds:.0f} s of audio ({profile.stream_minutes:.1f} station-minutes). "
        f"The stack used {total:.1f} CPU s: **{profile.per_minute(total):.2f} CPU s per minute "
        f"of station audio**; the machine was busy {profile.machine_busy:.1f} of "
        f"{profile.wall_seconds * (os.cpu_count() or 1):.0f} core-seconds.",
    ]
    if profile.synthesis_floor is not None:
        lines += [
            "",
            f"Synthesis alone (the physical floor, measured in the same run): "
            f"**{profile.synthesis_floor:.2f} CPU s per minute of audio**, "
            f"{profile.per_minute(total) / profile.synthesis_floor:.1f}× below the stack's figure.",
        ]
    lines += [
        "",
        "| component | CPU s | CPU s per station-minute | share |",
        "|---|---:|---:|---:|",
    ]
    for component, seconds in profile.by_component().items():
        lines.append(
            f"| {component} | {seconds:.1f} | {profile.per_minute(seconds):.3f} | "
            f"{100 * seconds / total:.1f} % |"
        )
    if profile.idle_percent:
        lines += [
            "",
            "Before the stations started, with nothing to do, each component used (percent of one "
            "core): "
            + ", ".join(f"{n} {v:.1f} %" for n, v in profile.idle_percent.items() if v >= 0.05)
            + f"; {sum(profile.idle_percent.values()):.0f} % in all.",
        ]
    if profile.rss_start_mb:
        lines += [
            "",
            "Resident memory of each component (all its processes), MiB:",
            "",
            "| component | at the start | at the end |",
            "|---|---:|---:|",
        ]
        for name, start in profile.rss_start_mb.items():
            end = profile.rss_end_mb.get(name, 0.0)
            lines.append(f"| {name} | {start:.0f} | {end:.0f} |")
    for component in profile.by_component():
        steps = profile.steps(component)
        if not steps:
            continue
        lines += [
            "",
            f"## {component}",
            "",
            "| step | CPU s per station-minute | share of the component |",
            "|---|---:|---:|",
        ]
        component_total = sum(s for _, s in steps) or 1.0
        for step, seconds in steps[:top]:
            lines.append(
                f"| {step} | {profile.per_minute(seconds):.3f} | "
                f"{100 * seconds / component_total:.1f} % |"
            )
        rest = sum(s for _, s in steps[top:])
        if rest:
            lines.append(
                f"| the rest | {profile.per_minute(rest):.3f} | "
                f"{100 * rest / component_total:.1f} % |"
            )
    return "\n".join(lines) + "\n"
