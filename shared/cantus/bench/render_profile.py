"""Where the render service's CPU time goes, step by step, for whole form pieces.

``cantus bench render --profile`` feeds the events of 16-bar AABA pieces (a held-out corpus
tune under the plan, harmonised by the shipped harmony model as the harmony service does,
one syllable per melody note as the lyric service sings them) to the render service's own
handler (``services.render.app.handle_piece_event``) in this process, with the service's
default settings (segment audio, every audio format, the lead sheet). Only the broker, the
table and the store are in-process stand-ins: a published event is serialised as the
producer would, a table write is serialised as JSON, a file is written to a temporary
folder. Everything else (synthesis, mastering, encoders, LilyPond, matplotlib) is the
real thing.

``StepProfiler`` wraps the functions that make up each step and charges the CPU time of
the thread that runs them (``time.thread_time``) to that step, exclusive of any wrapped
step inside it. The programs the render runs (ffmpeg, musicxml2ly, lilypond) report their
own CPU time (``cantus.render.subprocesses``), charged to the step that ran them. What no
step claims is "handler, other": the total is the process's CPU time
(``time.process_time``) plus its programs'.

For a flame graph of the same run, py-spy samples it from outside::

    py-spy record --subprocesses -o docs/results/render_profile.svg -- \\
        cantus bench render --profile --pieces 3
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEPS_OF_THE_SEGMENTS = (
    "event decoding (table → parts)",
    "arrangement (parts → tracks)",
    "MIDI writing",
    "synthesis",
    "mixing and mastering",
    "segment encode (Opus)",
    "event serialisation (protobuf)",
    "table write (JSON)",
)
"""Steps that run for every event or segment while the piece is composed."""


@dataclass
class StepProfiler:
    """CPU seconds per named step, exclusive of nested steps, across threads."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Charge the calling thread's CPU time inside the block to ``name``, minus what
        nested steps claim."""
        stack = self._local.__dict__.setdefault("stack", [])
        frame = {"nested": 0.0}
        stack.append(frame)
        started = time.thread_time()
        try:
            yield
        finally:
            spent = time.thread_time() - started
            stack.pop()
            if stack:
                stack[-1]["nested"] += spent
            self.add(name, spent - frame["nested"])

    def add(self, name: str, seconds: float, calls: int = 1) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.calls[name] = self.calls.get(name, 0) + calls

    def wrap(self, function: Callable, name: str | Callable[..., str]) -> Callable:
        """``function`` charging its calls to ``name`` (or ``name(*args, **kwargs)``)."""

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            step = name(*args, **kwargs) if callable(name) else name
            with self.step(step):
                return function(*args, **kwargs)

        return timed


@contextmanager
def patched(targets: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Set ``owner.attribute = value`` for each target; restore them all on exit (an
    attribute the owner only inherited is removed again)."""
    missing = object()
    saved = [
        (owner, attribute, vars(owner).get(attribute, missing)) for owner, attribute, _ in targets
    ]
    try:
        for owner, attribute, value in targets:
            setattr(owner, attribute, value)
        yield
    finally:
        for owner, attribute, value in reversed(saved):
            if value is missing:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, value)


def _export_step(audio: Any, sample_rate: int, fmt: str, *args: Any, **kwargs: Any) -> str:
    return f"final encode: {fmt}"


CHILD_PROGRAM_STEPS = {
    "musicxml2ly": "lead sheet engraving (LilyPond)",
    "lilypond": "lead sheet engraving (LilyPond)",
    "ffmpeg mp3": "final encode: mp3",
    "ffmpeg opus": "final encode: opus",
    "ffmpeg segment opus": "segment encode (Opus)",
}
"""The step a child program's CPU time (``cantus.render.subprocesses``) is charged to."""


def profiled_targets(profiler: StepProfiler, app: Any) -> list[tuple[Any, str, Callable]]:
    """Every function charged to a step, and where the render service looks it up."""
    from cantus.render import exports, leadsheet, pianoroll, piece, selfsim
    from cantus.render.mix import StreamingMaster
    from cantus.render.synth import SegmentRenderer

    def wrapped(owner: Any, attribute: str, name: Any):
        function = vars(owner)[attribute]
        if isinstance(function, classmethod):
            return owner, attribute, classmethod(profiler.wrap(function.__func__, name))
        return owner, attribute, profiler.wrap(function, name)

    return [
        wrapped(app, "decode_event", "event decoding (table → parts)"),
        wrapped(piece.PieceParts, "from_events", "event decoding (table → parts)"),
        wrapped(piece.PieceParts, "tracks", "arrangement (parts → tracks)"),
        wrapped(piece.PieceParts, "midi", "MIDI writing"),
        wrapped(SegmentRenderer, "render_stems_until", "synthesis"),
        wrapped(SegmentRenderer, "finish_stems", "synthesis"),
        wrapped(StreamingMaster, "process", "mixing and mastering"),
        wrapped(StreamingMaster, "finish", "mixing and mastering"),
        wrapped(app, "encode_segment_audio", "segment encode (Opus)"),
        wrapped(piece, "_measured_master", "final loudness and true peak"),
        wrapped(exports, "export_audio", _export_step),
        wrapped(leadsheet, "leadsheet_musicxml", "lead sheet MusicXML (music21)"),
        wrapped(leadsheet, "engrave_leadsheet", "lead sheet engraving (LilyPond)"),
        wrapped(pianoroll, "pianoroll_png", "piano roll (matplotlib)"),
        wrapped(selfsim, "selfsim_png", "self-similarity picture (matplotlib)"),
        wrapped(piece, "_summary_json", "piece.json"),
    ]


class JsonTable(dict):
    """The render table in memory; each write serialised as its changelog record would be."""

    def __init__(self, profiler: StepProfiler) -> None:
        super().__init__()
        self.profiler = profiler
        self.bytes_written = 0

    def __setitem__(self, key: str, value: Any) -> None:
        with self.profiler.step("table write (JSON)"):
            self.bytes_written += len(json.dumps(value).encode())
        super().__setitem__(key, value)


# --- the pieces --------------------------------------------------------------------------


def form_piece_events(index: int, *, bars: int = 16, form: str = "AABA", tempo: float = 100.0):
    """ComposeRequested, then per bar a MelodyBar, HarmonyBar and LyricLine, in the order
    the services publish them, for held-out corpus tune ``index`` under a ``form`` plan."""
    from cantus.bench.form import _held_out_tunes, planned_piece
    from cantus.music.form import plan_form
    from cantus.music.styles import Energy, Style
    from cantus.v1 import events_pb2 as pb

    tunes = [t for t in _held_out_tunes(index + 1) if len(t.melody.bars) >= bars]
    tune = tunes[index % len(tunes)]
    plan = plan_form(form, bars=bars, key=tune.melody.key, energy=Energy.MID)
    parts = planned_piece(plan, tune.melody.bars[:bars], Style(tune.style), tempo)
    piece_id = f"{index:032x}"
    spec = parts.spec
    events: list = [
        pb.ComposeRequested(
            meta=pb.EventMeta(piece_id=piece_id, index=0, producer="gateway"), spec=spec
        )
    ]
    for bar in range(bars):
        melody = parts.melody[bar]
        syllables = [
            pb.Syllable(bar_index=bar, note_index=n, text="la") for n in range(len(melody.notes))
        ]
        for message, producer in (
            (melody, "melody"),
            (parts.harmony_by_bar[bar], "harmony"),
            (
                pb.LyricLine(
                    spec=spec,
                    first_bar=bar,
                    bar_count=1,
                    syllables=syllables,
                    text=" ".join("la" for _ in syllables),
                ),
                "lyric",
            ),
        ):
            event = type(message)()
            event.CopyFrom(message)
            event.meta.CopyFrom(pb.EventMeta(piece_id=piece_id, index=bar, producer=producer))
            events.append(event)
    return piece_id, events


# --- the run ------------------------------------------------------------------------------


@dataclass
class RenderProfile:
    """CPU seconds by step over ``pieces`` pieces, the process's total, and wall times."""

    pieces: int
    bars: int
    audio_seconds: float
    steps: dict[str, float]
    calls: dict[str, int]
    total_cpu: float
    wall_seconds: float
    final_render_wall: list[float]
    final_render_steps: list[dict[str, float]]
    table_bytes: int

    @property
    def other(self) -> float:
        return max(0.0, self.total_cpu - sum(self.steps.values()))


def run_render_profile(pieces: int = 3, *, bars: int = 16) -> RenderProfile:
    """Render ``pieces`` form pieces through the service's handler (see module docstring)."""
    with tempfile.TemporaryDirectory(prefix="cantus-render-profile-") as tmp:
        os.environ.setdefault("CANTUS_STATE_DIR", os.path.join(tmp, "state"))
        from cantus.render.subprocesses import CHILD_CPU_SECONDS
        from cantus.storage import LocalPieceStore
        from cantus.streaming import Received
        from cantus.v1 import events_pb2 as pb
        from services.render import app

        fed = [form_piece_events(i, bars=bars) for i in range(pieces)]
        profiler = StepProfiler()
        completed: list[pb.PieceCompleted] = []

        async def publish(message: Any, *, received: Any = None) -> None:
            with profiler.step("event serialisation (protobuf)"):
                message.SerializeToString()
            if isinstance(message, pb.PieceCompleted):
                completed.append(message)

        store = LocalPieceStore(Path(tmp) / "pieces")
        original_write = store.write

        def write(piece_id: str, name: str, content: bytes, *, version: int = 1) -> str:
            with profiler.step("storing files"):
                return original_write(piece_id, name, content, version=version)

        store.write = write  # type: ignore[method-assign]  # timed for the profile
        from cantus.segment_store import render_segment_store
        from cantus.settings import Settings

        segment_audio = render_segment_store(Settings(data_dir=Path(tmp)))
        original_segment_write = segment_audio.write

        def write_segment(*args, **kwargs) -> str:  # whatever SegmentStore.write takes
            with profiler.step("storing segment audio"):
                return original_segment_write(*args, **kwargs)

        segment_audio.write = write_segment  # type: ignore[method-assign]  # timed
        table = JsonTable(profiler)
        event_table = JsonTable(profiler)
        app.held_events.clear()
        targets = [
            *profiled_targets(profiler, app),
            (app, "pieces", table),
            (app, "piece_events", event_table),
            (app, "store", store),
            (app, "segment_audio_store", segment_audio),
            (app.service, "publish", publish),
        ]
        with patched(targets):
            programs_before = dict(CHILD_CPU_SECONDS)
            cpu_started = time.process_time()
            wall_started = time.perf_counter()

            async def feed_all() -> None:
                # Pieces side by side, as the service's agent handles them.
                async def feed(events: list) -> None:
                    for offset, event in enumerate(events):
                        await app.handle_piece_event(event, Received("profile", 0, offset, 1))

                await asyncio.gather(*(feed(events) for _, events in fed))

            asyncio.run(feed_all())
            wall = time.perf_counter() - wall_started
            total = time.process_time() - cpu_started
        for label, seconds in CHILD_CPU_SECONDS.items():
            spent = seconds - programs_before.get(label, 0.0)
            profiler.add(CHILD_PROGRAM_STEPS.get(label, f"program: {label}"), spent, calls=0)
            total += spent
        summaries = [json.loads(store.read_all(piece_id)["piece.json"]) for piece_id, _ in fed]
    return RenderProfile(
        pieces=pieces,
        bars=bars,
        audio_seconds=sum(s["audio_duration_seconds"] for s in summaries),
        steps=dict(profiler.seconds),
        calls=dict(profiler.calls),
        total_cpu=total,
        wall_seconds=wall,
        final_render_wall=[s["render_seconds"]["wall"] for s in summaries],
        final_render_steps=[s["render_seconds"] for s in summaries],
        table_bytes=table.bytes_written + event_table.bytes_written,
    )


def format_profile(profile: RenderProfile) -> str:
    """The Markdown table of CPU time by step, largest first."""
    per_piece = profile.pieces
    rows = sorted(profile.steps.items(), key=lambda item: -item[1])
    rows.append(("handler, other (asyncio, base64, threads)", profile.other))
    lines = [
        f"{profile.pieces} pieces of {profile.bars} bars ({profile.audio_seconds:.1f} s of audio "
        f"in all), {profile.total_cpu:.1f} CPU s ({profile.total_cpu / per_piece:.2f} per piece, "
        f"{profile.total_cpu / profile.audio_seconds * 60:.1f} CPU s per minute of audio), "
        f"{profile.wall_seconds:.1f} s wall.",
        "",
        "| step | when | calls | CPU s per piece | share |",
        "|---|---|---:|---:|---:|",
    ]
    for name, seconds in rows:
        when = "segments" if name in STEPS_OF_THE_SEGMENTS else "final render"
        if name.startswith("handler"):
            when = "every event"
        calls = profile.calls.get(name, 0)
        lines.append(
            f"| {name} | {when} | {calls} | {seconds / per_piece:.3f} | "
            f"{100 * seconds / profile.total_cpu:.1f} % |"
        )
    walls = ", ".join(f"{w:.2f}" for w in profile.final_render_wall)
    segment_steps = sum(s for name, s in profile.steps.items() if name in STEPS_OF_THE_SEGMENTS)
    lines += [
        "",
        f"While the piece is composed (segments): {segment_steps / per_piece:.2f} CPU s per "
        f"piece; its files (final render): "
        f"{(profile.total_cpu - segment_steps - profile.other) / per_piece:.2f}.",
        f"Final render wall time per piece (piece.json `render_seconds.wall`): {walls} s.",
        f"Table writes serialised: {profile.table_bytes / 1e6:.1f} MB in all.",
        "",
        "CPU time is the time of the thread that ran each step (exclusive of the steps inside "
        "it) plus the CPU time of the programs it ran (ffmpeg, musicxml2ly, LilyPond; the "
        "long-lived LilyPond's start-up is charged to the first piece's engraving). The "
        "pieces are held-out corpus tunes under a 16-bar AABA plan, harmonised by the shipped "
        "harmony model, one syllable per note, fed to `services.render.app."
        "handle_piece_event` side by side with the service's default settings.",
        "",
        "Flame graph of the same run: `py-spy record --subprocesses -o "
        "docs/results/render_profile.svg -- cantus bench render --profile --pieces 2` "
        "([render_profile.svg](render_profile.svg)).",
    ]
    return "\n".join(lines)
