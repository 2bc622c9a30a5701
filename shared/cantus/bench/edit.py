"""``cantus bench edit``: edits against new pieces through a running stack (issue #18).

Side by side in one run, piece after piece (so the shared machine's load falls on both
alike): compose a piece (time to its first melody bar and to completion), then regenerate
``regen_bars`` bars in its middle (time to the first new bar, to completion), then change
its palette (every segment rendered again), then the palette and then the tempo of its
middle section alone (``ChangeSound.section``). Each edit's piece.json says how much
audio it rendered (``rendered_audio_seconds``) against the piece's whole audio, and for
the section edits how each splice joins (``joins``: the largest sample step at its edges
against the music around it).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cantus.cli.compose import open_channel
from cantus.render.piece import PieceParts
from cantus.render.tempo import largest_step_bpm
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc


@dataclass
class Timed:
    """Seconds from the request to its first melody bar and to its last event."""

    first_bar_s: float | None
    total_s: float
    events: list[api.PieceEvent] = field(default_factory=list)
    first_event_s: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    """An edit's seconds from piece.json: bars done, audio done, total (files stored)."""


def _timed(stream: Iterator[api.PieceEvent]) -> Timed:
    started = time.monotonic()
    first = first_event = None
    events = []
    for event in stream:
        if first_event is None:
            first_event = time.monotonic() - started
        if first is None and event.WhichOneof("event") == "melody_bar":
            first = time.monotonic() - started
        events.append(event)
    return Timed(first, time.monotonic() - started, events, first_event)


def _edit_stages(stub: api_grpc.ComposerStub, piece_id: str) -> tuple[dict, dict[str, float]]:
    stored = stub.GetPiece(api.GetPieceRequest(piece_id=piece_id), timeout=60)
    summary = json.loads(next(f.content for f in stored.files if f.name == "piece.json"))
    entry = summary["edit_history"][-1]
    return summary, dict(entry["seconds"])


@dataclass
class EditBench:
    pieces: int
    bars: int
    regen_bars: int
    compose: list[Timed]
    regenerate: list[Timed]
    palette: list[Timed]
    rendered_seconds: list[float]
    piece_seconds: list[float]
    regen_segments: list[int]
    segments: list[int]
    section_palette: list[Timed] = field(default_factory=list)
    section_tempo: list[Timed] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    """The label of the section each piece's section edits changed."""
    section_shares: dict[str, list[float]] = field(default_factory=dict)
    """Rendered audio over the piece's audio, per section edit kind."""
    section_segments: dict[str, list[int]] = field(default_factory=dict)
    join_ratios: dict[str, list[float]] = field(default_factory=dict)
    """Every join's step over the largest step around it, per section edit kind."""
    tempo_steps: list[float] = field(default_factory=list)
    """The largest beat-to-beat tempo step of each piece after its section tempo edit."""


SECTION_TEMPO_FACTOR = 0.8
"""The section tempo edit: the middle section at this share of the piece's tempo."""


def run_edit_bench(
    gateway: str,
    *,
    pieces: int = 4,
    bars: int = 16,
    regen_bars: int = 8,
    log: Callable[[str], None] = print,
) -> EditBench:
    first = (bars - regen_bars) // 2 + 1
    compose, regenerate, palette = [], [], []
    rendered, whole, regen_segments, segments = [], [], [], []
    section_palette: list[Timed] = []
    section_tempo: list[Timed] = []
    sections: list[str] = []
    section_shares: dict[str, list[float]] = {}
    section_segments: dict[str, list[int]] = {}
    join_ratios: dict[str, list[float]] = {}
    tempo_steps: list[float] = []
    with open_channel(gateway) as channel:
        stub = api_grpc.ComposerStub(channel)
        for index in range(pieces):
            request = api.ComposeRequest(bars=bars, tempo_bpm=110, mood="calm", seed=100 + index)
            composed = _timed(stub.Compose(request, timeout=600))
            piece_id = composed.events[0].requested.meta.piece_id
            compose.append(composed)
            edit = api.EditRequest(
                piece_id=piece_id,
                seed=index,
                regenerate=api.RegenerateBars(
                    bars=api.BarRange(first_bar=first, last_bar=first + regen_bars - 1)
                ),
            )
            regenerated = _timed(stub.Edit(edit, timeout=600))
            regenerate.append(regenerated)
            summary, regenerated.stages = _edit_stages(stub, piece_id)
            entry = summary["edit_history"][-1]
            rendered.append(entry["rendered_audio_seconds"] or 0.0)
            whole.append(summary["audio_duration_seconds"])
            regen_segments.append(
                sum(e.WhichOneof("event") == "render_segment" for e in regenerated.events)
            )
            segments.append(sum(e.WhichOneof("event") == "render_segment" for e in composed.events))
            sound = api.EditRequest(
                piece_id=piece_id, change_sound=api.ChangeSound(palette="piano")
            )
            palette.append(_timed(stub.Edit(sound, timeout=600)))
            _, palette[-1].stages = _edit_stages(stub, piece_id)
            log(
                f"piece {index + 1}: compose first bar {composed.first_bar_s:.2f} s, "
                f"regenerate first bar {regenerated.first_bar_s:.2f} s "
                f"(done {regenerated.total_s:.1f} s), palette {palette[-1].total_s:.1f} s"
            )
            spec = palette[-1].events[0].edited.spec
            if len(spec.form.sections) < 2:
                log(f"piece {index + 1}: no form plan, no section edits")
                continue
            label = spec.form.sections[len(spec.form.sections) // 2].label
            sections.append(label)
            for kind, change in (
                ("palette", api.ChangeSound(section=label, palette="strings")),
                (
                    "tempo",
                    api.ChangeSound(
                        section=label, tempo_bpm=round(spec.tempo_bpm * SECTION_TEMPO_FACTOR)
                    ),
                ),
            ):
                timed = _timed(
                    stub.Edit(api.EditRequest(piece_id=piece_id, change_sound=change), timeout=600)
                )
                summary, timed.stages = _edit_stages(stub, piece_id)
                entry = summary["edit_history"][-1]
                (section_palette if kind == "palette" else section_tempo).append(timed)
                share = (entry["rendered_audio_seconds"] or 0.0) / summary["audio_duration_seconds"]
                section_shares.setdefault(kind, []).append(share)
                section_segments.setdefault(kind, []).append(
                    sum(e.WhichOneof("event") == "render_segment" for e in timed.events)
                )
                join_ratios.setdefault(kind, []).extend(j["ratio"] for j in entry["joins"] or [])
                if kind == "tempo":
                    edited = timed.events[0].edited.spec
                    parts = PieceParts(edited, {}, {}, {}, None)
                    tempo_steps.append(largest_step_bpm(parts.tempo_map))
                log(
                    f"piece {index + 1}: section {label} {kind}: {timed.total_s:.1f} s, "
                    f"{100 * share:.0f} % of the audio rendered, joins "
                    + ", ".join(f"{j['ratio']:.2f}" for j in entry["joins"] or [])
                )
    return EditBench(
        pieces,
        bars,
        regen_bars,
        compose,
        regenerate,
        palette,
        rendered,
        whole,
        regen_segments,
        segments,
        section_palette,
        section_tempo,
        sections,
        section_shares,
        section_segments,
        join_ratios,
        tempo_steps,
    )


def _median(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def first_bar_ratio(bench: EditBench) -> float:
    """Median over pieces of the regeneration's first melody bar over the new piece's."""
    return _median(
        [
            r.first_bar_s / c.first_bar_s
            for c, r in zip(bench.compose, bench.regenerate, strict=True)
            if r.first_bar_s is not None and c.first_bar_s
        ]
    )


def format_edit_bench(bench: EditBench, *, command: str) -> str:
    b = bench
    rows = [
        ("compose a new piece", b.compose),
        (f"regenerate {b.regen_bars} bars", b.regenerate),
        ("change the palette (whole piece)", b.palette),
        ("change one section's palette", b.section_palette),
        (f"change one section's tempo (x{SECTION_TEMPO_FACTOR:g})", b.section_tempo),
    ]
    lines = [
        f"# Edits against new pieces ({b.pieces} pieces of {b.bars} bars)",
        "",
        "```",
        command,
        "```",
        "",
        "Medians; each piece is composed, then its bars regenerated, then its palette changed, "
        "then its middle section's palette (to strings) and then that section's tempo, one "
        "after another on the same stack (`cantus.bench.edit`). An edit's bars, audio "
        "and total seconds are its own account in piece.json (from the start of the edit; "
        "after the audio come the version's files: MIDI, lead sheet engraved by LilyPond, "
        "pictures, four audio exports).",
        "",
        "| request | first event (s) | first melody bar (s) | bars done (s) | audio done (s) "
        "| last event (s) |",
        "|---|---|---|---|---|---|",
    ]

    def cell(value: float) -> str:
        return "–" if value != value else f"{value:.2f}"

    for name, timed in rows:
        lines.append(
            f"| {name} | {cell(_median([t.first_event_s for t in timed]))} | "
            f"{cell(_median([t.first_bar_s for t in timed]))} | "
            f"{cell(_median([t.stages.get('bars') for t in timed]))} | "
            f"{cell(_median([t.stages.get('audio') for t in timed]))} | "
            f"{_median([t.total_s for t in timed]):.2f} |"
        )
    ratio = _median([r / w for r, w in zip(b.rendered_seconds, b.piece_seconds, strict=True)])
    first_ratio = first_bar_ratio(b)
    lines += [
        "",
        "Per piece (seconds): "
        + "; ".join(
            f"compose first bar {c.first_bar_s:.2f}, regenerate first bar {r.first_bar_s:.2f}"
            + (
                f" (its first request to melody_lm at {r.stages['decode_start']:.2f})"
                if "decode_start" in r.stages
                else ""
            )
            for c, r in zip(b.compose, b.regenerate, strict=True)
        )
        + ".",
        "",
        f"First melody bar, regeneration over new piece: median {cell(first_ratio)} "
        "(per piece, the piece's regeneration over its own composition).",
        "",
        f"Audio rendered for a regeneration: median {100 * ratio:.0f} % of the piece's audio "
        f"(the changed bars, one bar of pre-roll and the crossfade); segments streamed: "
        f"{_median([float(s) for s in b.regen_segments]):.0f} of "
        f"{_median([float(s) for s in b.segments]):.0f}.",
        "",
    ]
    if b.sections:
        lines += [
            "Section edits (the middle section of each piece's plan: "
            + ", ".join(b.sections)
            + "):",
            "",
            "| section edit | audio rendered (median % of the piece) | segments streamed "
            "(median) | joins | largest join step / largest step around it (max) |",
            "|---|---|---|---|---|",
        ]
        for kind in ("palette", "tempo"):
            shares = b.section_shares.get(kind, [])
            ratios = b.join_ratios.get(kind, [])
            lines.append(
                f"| {kind} | {100 * _median(list(shares)):.0f} | "
                f"{_median([float(s) for s in b.section_segments.get(kind, [])]):.0f} of "
                f"{_median([float(s) for s in b.segments]):.0f} | {len(ratios)} | "
                f"{max(ratios, default=float('nan')):.2f} |"
            )
        lines += [
            "",
            f"Largest beat-to-beat tempo step after a section tempo edit: "
            f"{max(b.tempo_steps, default=float('nan')):.1f} bpm (max over pieces).",
            "",
        ]
    return "\n".join(lines)
