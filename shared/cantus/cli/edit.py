"""``cantus edit PIECE_ID …``: the client side of an Edit call — stream what changes, then
fetch the new version's files into ``DIR/<piece_id>/v<N>/`` (issue #18). Also
``cantus eval infill`` (``cantus.eval.infill``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import grpc
import typer

from cantus.cli.compose import ComposeFailed, download_piece, open_channel, write_files
from cantus.storage import check_piece_id
from cantus.v1 import composer_pb2 as api
from cantus.v1 import composer_pb2_grpc as api_grpc

_BARS = re.compile(r"^\s*(\d+)\s*(?:[-–]\s*(\d+))?\s*$")


def parse_bars(text: str) -> api.BarRange:
    """``5-8`` (bars 5 to 8) or ``5`` (bar 5), 1-based as on the lead sheet."""
    match = _BARS.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a bar range such as 5-8 or 5")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return api.BarRange(first_bar=first, last_bar=last)


@dataclass
class EditedPiece:
    piece_id: str
    version: int
    folder: Path
    events: list[api.PieceEvent] = field(default_factory=list)


def fetch_version(channel: grpc.Channel, piece_id: str, version: int, out_dir: Path) -> Path:
    """Write every file of one version to ``out_dir/<piece_id>/`` (version 1) or
    ``out_dir/<piece_id>/v<N>/``."""
    piece = download_piece(channel, piece_id, version)
    folder = out_dir / check_piece_id(piece.piece_id)
    if piece.version > 1:
        folder = folder / f"v{piece.version}"
    return write_files(folder, piece.files)


def edit_piece(
    address: str,
    request: api.EditRequest,
    out_dir: Path,
    *,
    on_event: Callable[[api.PieceEvent], None] = lambda e: None,
    timeout_s: float | None = None,
) -> EditedPiece:
    """Make one edit end to end and store the new version's files; returns where they are."""
    events: list[api.PieceEvent] = []
    with open_channel(address) as channel:
        stub = api_grpc.ComposerStub(channel)
        try:
            for event in stub.Edit(request, timeout=timeout_s):
                events.append(event)
                on_event(event)
        except grpc.RpcError as error:
            raise ComposeFailed.from_rpc_error(error) from None
        if not events or events[-1].WhichOneof("event") != "completed":
            raise ComposeFailed(f"the edit of piece {request.piece_id} ended before completion")
        version = events[0].edited.version
        folder = fetch_version(channel, request.piece_id, version, out_dir)
    return EditedPiece(request.piece_id, version, folder, events)


def register(app: typer.Typer, eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``cantus edit``, ``cantus eval infill`` and ``cantus bench edit`` to the CLI."""
    from rich.console import Console

    console = Console(stderr=True)

    @app.command()
    def edit(
        piece_id: Annotated[str, typer.Argument(help="The piece to edit (32 hex characters)")],
        regenerate: Annotated[
            str | None,
            typer.Option(help="Compose the melody of these bars anew, e.g. 5-8 (1-based)"),
        ] = None,
        reharmonize: Annotated[
            str | None,
            typer.Option(help="Choose the chords of these bars again, e.g. 5-8, or 'all'"),
        ] = None,
        style: Annotated[
            str, typer.Option(help="With --reharmonize: folk, celtic or chorale")
        ] = "",
        energy: Annotated[str, typer.Option(help="With --reharmonize: low, mid or high")] = "",
        palette: Annotated[
            str, typer.Option(help="A new palette for the whole piece (or --section)")
        ] = "",
        section: Annotated[
            str,
            typer.Option(
                help="With --palette/--tempo: only the sections with this label in the "
                "piece's form plan (e.g. B, chorus), or a section's number"
            ),
        ] = "",
        lyrics_section: Annotated[
            int | None,
            typer.Option(help="Write the lyrics of this section again (1 = the first section)"),
        ] = None,
        theme: Annotated[
            str, typer.Option(help="With --lyrics-section: the new lines' theme")
        ] = "",
        tempo: Annotated[
            float | None,
            typer.Option(help="A new tempo for the whole piece (or --section), bpm"),
        ] = None,
        from_version: Annotated[
            int, typer.Option(help="The version to start from (default: the latest)")
        ] = 0,
        seed: Annotated[int | None, typer.Option(help="Sampling seed of new bars")] = None,
        out: Annotated[
            Path, typer.Option(help="Write the new version under DIR/<piece_id>/")
        ] = Path("out"),
        address: Annotated[str | None, typer.Option(help="Gateway host:port")] = None,
    ) -> None:
        """Edit a stored piece into a new version (the old one is kept): regenerate bars,
        reharmonise bars or all, change the palette or tempo of the piece or of one section
        (--section B --tempo 90), or rewrite a section's lyrics.
        Prints what changes as it streams, then where the new version's files are."""
        from cantus.settings import load_settings

        chosen = [
            name
            for name, given in (
                ("--regenerate", regenerate is not None),
                ("--reharmonize", reharmonize is not None),
                ("--palette/--tempo", bool(palette) or tempo is not None),
                ("--lyrics-section", lyrics_section is not None),
            )
            if given
        ]
        if len(chosen) != 1:
            console.print(
                "[red]error:[/] give one edit: --regenerate BARS, --reharmonize BARS|all, "
                "--palette/--tempo or --lyrics-section N"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
            raise typer.Exit(2)
        if section and chosen != ["--palette/--tempo"]:
            console.print("[red]error:[/] --section goes with --palette and/or --tempo")
            raise typer.Exit(2)
        request = api.EditRequest(piece_id=piece_id, from_version=from_version)
        if seed is not None:
            request.seed = seed
        try:
            if regenerate is not None:
                request.regenerate.bars.CopyFrom(parse_bars(regenerate))
            elif lyrics_section is not None:
                request.rewrite_lyrics.section = lyrics_section
                request.rewrite_lyrics.theme = theme
            elif reharmonize is not None:
                request.reharmonize.style = style
                request.reharmonize.energy = energy
                if reharmonize.strip().lower() != "all":
                    request.reharmonize.bars.CopyFrom(parse_bars(reharmonize))
            else:
                request.change_sound.palette = palette
                request.change_sound.section = section
                if tempo is not None:
                    request.change_sound.tempo_bpm = tempo
        except ValueError as error:
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(2) from None

        def on_event(event: api.PieceEvent) -> None:
            kind = event.WhichOneof("event")
            if kind == "edited":
                e = event.edited
                console.print(f"version {e.version} from {e.from_version}: {e.description}")
            elif kind == "melody_bar":
                console.print(f"  melody bar {event.melody_bar.meta.index + 1}")
            elif kind == "harmony_bar":
                chords = " ".join(c.symbol for c in event.harmony_bar.chords)
                console.print(f"  chords of bar {event.harmony_bar.meta.index + 1}: {chords}")
            elif kind == "lyric_line":
                line = event.lyric_line
                console.print(f"  lyrics from bar {line.first_bar + 1}: {line.text}")
            elif kind == "render_segment":
                s = event.render_segment
                console.print(
                    f"  audio of bars {s.first_bar + 1}-{s.first_bar + s.bar_count} "
                    f"({s.audio_duration_seconds:.1f} s)"
                )

        settings = load_settings()
        try:
            edited = edit_piece(
                address or f"{settings.host}:{settings.gateway_port}",
                request,
                out,
                on_event=on_event,
            )
        except ComposeFailed as error:
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(1) from None
        console.print(f"[green]✓[/] version {edited.version}: {edited.folder}")
        print(edited.folder)

    @eval_app.command("infill")
    def eval_infill(
        tunes: Annotated[int, typer.Option(help="Held-out tunes with a gap each")] = 60,
        gap: Annotated[int, typer.Option(help="Bars in each gap")] = 4,
        candidates: Annotated[int, typer.Option(help="Candidates per gap")] = 8,
        seed: Annotated[int, typer.Option()] = 0,
        threads: Annotated[int, typer.Option(help="torch threads")] = 1,
        out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = Path(
            "docs/results/infill.md"
        ),
        checkpoint: Annotated[Path | None, typer.Option(help="Melody checkpoint")] = None,
    ) -> None:
        """Infilling against left-context-only decoding on held-out tunes: NLL of the real
        middles, and smooth joins at both edges of decoded middles."""
        import sys

        import torch

        from cantus.eval.infill import format_infill, run_infill_eval
        from cantus.settings import load_settings

        torch.set_num_threads(threads)
        result = run_infill_eval(
            checkpoint or load_settings().melody_checkpoint,
            tunes=tunes,
            gap_bars=gap,
            candidates=candidates,
            seed=seed,
            log=lambda line: console.print(line),
        )
        command = "cantus " + " ".join(sys.argv[1:])
        text = format_infill(result, command=command)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        print(text)

    @bench_app.command("edit")
    def bench_edit(
        pieces: Annotated[int, typer.Option(help="Pieces composed, then edited")] = 4,
        bars: Annotated[int, typer.Option(help="Bars per piece")] = 16,
        regen_bars: Annotated[int, typer.Option(help="Bars regenerated in each")] = 8,
        out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = Path(
            "docs/results/edit_bench.md"
        ),
        gateway: Annotated[str | None, typer.Option(help="Gateway host:port")] = None,
    ) -> None:
        """Edits against new pieces through the running stack: time to the first new bar of
        a regeneration against a new piece's first bar, and the audio rendered per edit."""
        import sys

        from cantus.bench.edit import format_edit_bench, run_edit_bench
        from cantus.settings import load_settings

        settings = load_settings()
        bench = run_edit_bench(
            gateway or f"{settings.host}:{settings.gateway_port}",
            pieces=pieces,
            bars=bars,
            regen_bars=regen_bars,
            log=lambda line: console.print(line),
        )
        text = format_edit_bench(bench, command="cantus " + " ".join(sys.argv[1:]))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        print(text)
