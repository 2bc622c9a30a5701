"""The ``cantus`` command: the embedded stack (up, down, status), compose, train, bench, eval."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cantus.lyrics import LYRICS_LANGUAGES

app = typer.Typer(
    help="Compose music with language models, streamed bar by bar.",
    no_args_is_help=True,
    add_completion=False,
)
train_app = typer.Typer(help="Train the models this project serves.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks (ratios against baselines measured in the same run).", no_args_is_help=True
)
eval_app = typer.Typer(help="Quality evaluations against baselines.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(bench_app, name="bench")
app.add_typer(eval_app, name="eval")
from cantus.cli.station import (  # noqa: E402 - registered beside the others
    bench_therapy,
    station_app,
)
from cantus.cli.station import plan as _plan  # noqa: E402
from cantus.cli.station import signal as _signal  # noqa: E402

app.add_typer(station_app, name="station")
app.command("plan")(_plan)
app.command("signal")(_signal)
bench_app.command("therapy")(bench_therapy)
from cantus.cli.edit import register as _register_edit  # noqa: E402

_register_edit(app, eval_app, bench_app)  # cantus edit, eval infill, bench edit (#18)

console = Console(stderr=True)


def _invoked_command() -> str:
    """The command line as typed, for the report that records how it was made."""
    return " ".join(["cantus", *sys.argv[1:]])


def _emit_report(text: str, out: Path | None) -> None:
    """Print a Markdown report, and write it to ``out`` when given."""
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


# --- the embedded stack ------------------------------------------------------------------------


@app.command()
def up(
    supervise: Annotated[
        bool,
        typer.Option(
            help="Restart a stream service or the gateway that dies, with back-off "
            "(a supervisor process; logs/supervisor.log)"
        ),
    ] = True,
    broker_storage: Annotated[
        str | None,
        typer.Option(
            help="The broker's storage: memory (topics lost when the broker restarts), "
            "local-s3 (a local S3 store started with the stack: topics survive a broker "
            "restart) or s3://BUCKET/ (an S3-compatible store from the AWS_* environment: "
            "AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP). "
            "Default: CANTUS_BROKER_STORAGE or memory"
        ),
    ] = None,
) -> None:
    """Start the broker, topics, Triton, every service and the gateway; wait until healthy."""
    from pydantic import ValidationError

    from cantus.settings import load_settings
    from cantus.stack import Stack, StackError

    if broker_storage is not None:
        os.environ["CANTUS_BROKER_STORAGE"] = broker_storage
    try:
        settings = load_settings()
    except ValidationError as error:
        raise typer.BadParameter(str(error), param_hint="--broker-storage") from None
    stack = Stack(settings)
    try:
        with console.status("starting the embedded stack…"):
            stack.up(
                report=lambda c: console.print(f"  [green]✓[/] {c.name:<10} {c.address}"),
                supervise=supervise,
            )
    except StackError as error:
        console.print(f"[red]cantus up failed:[/] {error} (logs in {settings.log_dir})")
        raise typer.Exit(1) from None
    console.print(
        f"[bold]Cantus is up.[/] gRPC gateway at {settings.host}:{settings.gateway_port}; "
        f"logs in {settings.log_dir}; stop with `cantus down`."
    )


@app.command()
def down() -> None:
    """Stop every component of the embedded stack (no orphan processes)."""
    from cantus.settings import load_settings
    from cantus.stack import Stack

    stopped = Stack(load_settings()).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def kcat(context: typer.Context) -> None:
    """Run kcat against the stack's broker (-b added unless given), with the librdkafka of the
    confluent-kafka wheel: the system kcat's own (Debian 12: 2.0.2) cannot read the broker's
    ApiVersions reply. Example: `cantus kcat -L`, `cantus kcat -C -t cantus.melody.bar -e`."""
    from cantus.kcat import KcatUnavailable, kcat_command
    from cantus.settings import load_settings

    try:
        argv, env = kcat_command(list(context.args), load_settings().broker)
    except KcatUnavailable as error:
        console.print(f"[red]cantus kcat:[/] {error}")
        raise typer.Exit(1) from None
    os.execvpe(argv[0], argv, env)


@app.command()
def status() -> None:
    """Show the components of the embedded stack and where they listen."""
    from cantus.settings import load_settings
    from cantus.stack import Stack

    components = Stack(load_settings()).components()
    if not components:
        console.print("the embedded stack is not running")
        raise typer.Exit(1)
    from cantus.supervisor import read_state

    supervised = (read_state(load_settings().run_dir) or {}).get("components", {})
    for component in components.values():
        line = f"{component.name:<10} pid {component.pid:<8} {component.address}"
        child = supervised.get(component.name)
        if child is not None:
            line += f"  restarts {child['restarts']}"
            if child["last_exit"]:
                line += f" (last: {child['last_exit']})"
            if child["given_up"]:
                line += " [red]given up[/]"
        console.print(line)


# --- compose -----------------------------------------------------------------------------------


@app.command()
def compose(
    key: Annotated[
        str | None,
        typer.Option(help="Tonic: C, F#, Bb, … (default C; with a melody file, the file's)"),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="major or minor (default major; with a melody file, the file's)"),
    ] = None,
    tempo: Annotated[
        float | None,
        typer.Option(
            help="Quarter-note beats per minute (default 100; with a melody file, the file's)"
        ),
    ] = None,
    meter: Annotated[
        str | None,
        typer.Option(
            help="Time signature, e.g. 4/4, 6/8 (default 4/4; with a melody file, the "
            "file's, and a meter given re-bars it)"
        ),
    ] = None,
    bars: Annotated[
        int | None, typer.Option(help="Bars to compose (default 16; not with --duration)")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(help="Length instead of bars: 90s, 2m, 1m30s or 150 (seconds), up to 5m"),
    ] = None,
    form: Annotated[
        str,
        typer.Option(
            help="Form: auto (8-20 bars: drawn from the corpus's phrase patterns; longer: by "
            "length), through, AA', AABA, ABAC, AABB, ABA, rondo, verse-chorus"
        ),
    ] = "auto",
    style: Annotated[str, typer.Option(help="folk, celtic or chorale")] = "folk",
    mood: Annotated[str, typer.Option(help="calm, happy, energetic, …")] = "calm",
    palette: Annotated[
        str,
        typer.Option(
            help="The sound: folk, celtic, chorale, piano, piano-strings, strings, harp-flute, "
            "ambient, lullaby, therapy (default: from style and mood)"
        ),
    ] = "",
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: random)")] = None,
    lyrics: Annotated[str, typer.Option(help="Lyrics theme text (default: no lyrics)")] = "",
    lang: Annotated[str, typer.Option(help="Lyrics language: en or zh")] = "en",
    rhyme: Annotated[str, typer.Option(help="Rhyme scheme per stanza: AABB, ABAB, ABCB…")] = "",
    lyrics_register: Annotated[
        str,
        typer.Option(
            help="Register of the lyrics: en song, modern, literary, scripture; zh ci, shi, qu"
        ),
    ] = "",
    vocals: Annotated[
        bool | None,
        typer.Option(
            "--vocals/--no-vocals",
            help="Sing the lyrics: a vocal stem mixed as the lead (default: on with --lyrics)",
        ),
    ] = None,
    pickup: Annotated[
        bool | None,
        typer.Option(
            "--pickup/--no-pickup",
            help="Open with an upbeat in a bar of its own (the piece is a bar longer); default: "
            "as often as folk tunes of the style and meter do",
        ),
    ] = None,
    continue_midi: Annotated[
        Path | None,
        typer.Option("--continue", help="A melody to continue (.mid, .musicxml, .mxl or .abc)"),
    ] = None,
    harmonize_midi: Annotated[
        Path | None,
        typer.Option("--harmonize", help="A melody to harmonise (.mid, .musicxml, .mxl or .abc)"),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for DIR/<piece_id>/ files")] = Path("out"),
    gateway: Annotated[str | None, typer.Option(help="Gateway host:port")] = None,
) -> None:
    """Compose one piece through the gateway and write DIR/<piece_id>/piece.mid and piece.json."""
    from cantus.cli.compose import (
        ComposeFailed,
        describe_form,
        describe_given_melody,
        parse_duration,
    )
    from cantus.cli.compose import compose as compose_piece
    from cantus.settings import load_settings
    from cantus.v1 import composer_pb2 as api

    settings = load_settings()
    address = gateway or f"{settings.host}:{settings.gateway_port}"
    # Unset key, mode, meter and tempo stay unset: the server fills them in, from the
    # melody file when there is one.
    request = api.ComposeRequest(
        key=key or "",
        mode=mode or "",
        meter=meter or "",
        style=style,
        mood=mood,
        palette=palette,
        lyrics_theme=lyrics,
        lyrics_language=lang,
        lyrics_rhyme_scheme=rhyme,
        lyrics_register=lyrics_register,
        form=form,
    )
    if tempo is not None:
        request.tempo_bpm = tempo
    if vocals is not None:
        request.vocals = vocals
    if pickup is not None:
        request.pickup = pickup
    if seed is not None:
        request.seed = seed
    if bars is not None:
        request.bars = bars
    if duration is not None:
        try:
            request.duration_seconds = parse_duration(duration)
        except ValueError as error:
            console.print(f"[red]error:[/] --duration: {error}")
            raise typer.Exit(2) from None
    for path, field in ((continue_midi, "continue_midi"), (harmonize_midi, "harmonize_midi")):
        if path is not None:
            try:
                setattr(request, field, path.read_bytes())
            except OSError as error:
                console.print(
                    f"[red]error:[/] --{field.split('_')[0]}: cannot read {path}: {error}"
                )
                raise typer.Exit(2) from None

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("composing", total=None)

        def on_event(event: api.PieceEvent) -> None:
            kind = event.WhichOneof("event")
            if kind == "requested":
                given = describe_given_melody(event.requested.spec)
                if given:
                    progress.console.print(given, highlight=False, markup=False, soft_wrap=True)
                plan = describe_form(event.requested.spec)
                if plan:
                    progress.console.print(
                        f"form {plan}", highlight=False, markup=False, soft_wrap=True
                    )
                progress.update(
                    task,
                    total=event.requested.spec.bars,
                    description=f"piece {event.requested.meta.piece_id}",
                )
            elif kind == "melody_bar":
                progress.advance(task)

        def on_busy(message: str, wait_s: float) -> None:
            progress.console.print(f"gateway busy ({message}); asking again in {wait_s:g} s")

        try:
            piece = compose_piece(address, request, out, on_event=on_event, on_busy=on_busy)
        except ComposeFailed as error:
            progress.stop()
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(1) from None
    console.print(f"[green]✓[/] {piece.folder}")
    print(piece.folder)


# --- train / bench / eval ------------------------------------------------------------------------


@app.command()
def gallery(
    out: Annotated[
        Path, typer.Option(help="Folder for DIR/<palette>/<style>/, index.md and index.html")
    ] = Path("out/gallery"),
    bars: Annotated[int, typer.Option(help="Bars per example")] = 16,
    seed: Annotated[int, typer.Option(help="Sampling seed")] = 0,
    style: Annotated[
        list[str] | None, typer.Option(help="Only these styles (repeat); default: every style")
    ] = None,
) -> None:
    """An example of every palette in every style, composed in process: piece.mid,
    piece.ogg and pianoroll.png in DIR/<palette>/<style>/, listed in DIR/index.md and
    DIR/index.html (a page to listen to)."""
    from cantus.music.styles import Style
    from cantus.render.gallery import build_gallery

    known = [s.value for s in Style]
    unknown = [name for name in style or [] if name not in known]
    if unknown:
        raise typer.BadParameter(f"unknown style {unknown[0]!r} (known: {', '.join(known)})",
                                 param_hint="--style")  # fmt: skip
    styles = tuple(Style(name) for name in style) if style else tuple(Style)
    with console.status(f"composing and rendering {len(styles)} styles x every palette…"):
        entries = build_gallery(out, bars=bars, seed=seed, styles=styles)
    for entry in entries:
        print(f"{entry.palette:14} {entry.style:8} {entry.folder}  "
              f"masking {100 * entry.masking:.1f} %")  # fmt: skip
    print(f"listen: {out / 'index.html'}")


@train_app.command("melody")
def train_melody(
    steps: Annotated[
        int | None,
        typer.Option(help="Train this many steps (reproducible) instead of for minutes"),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(help="Wall-clock budget; unset: the shipped checkpoint's 40 minutes"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Checkpoint path")] = None,
    config: Annotated[str, typer.Option(help="Model size: default or tiny")] = "default",
    seed: Annotated[int, typer.Option()] = 0,
    kv_heads: Annotated[
        int | None,
        typer.Option(help="Key/value heads (grouped-query attention); unset: the config's"),
    ] = None,
    minor_draws: Annotated[
        int | None,
        typer.Option(help="Draws per epoch of each minor tune (major: 1); unset: the default"),
    ] = None,
    key_labels: Annotated[
        str,
        typer.Option(help="Key labels: heard (music21's analysis of each tune) or score"),
    ] = "heard",
    control_dropout: Annotated[
        float | None,
        typer.Option(help="Share of draws without key and mode (for guidance); unset: 0.1"),
    ] = None,
    threads: Annotated[
        int, typer.Option(help="Torch threads (1 when other work shares the cores)")
    ] = 2,
    fim_rate: Annotated[
        float | None,
        typer.Option(help="Share of draws written fill-in-the-middle; unset: 0.25"),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Continue from this checkpoint instead of random weights"),
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate")] = 1e-3,
    contour: Annotated[
        bool,
        typer.Option(help="Give the model its melody's last interval at every position"),
    ] = True,
    tonality: Annotated[
        bool,
        typer.Option(help="Give the model its latest pitch's scale degree in the asked key"),
    ] = False,
) -> None:
    """Train the melody LM on the corpus shipped in music21 (reproduces the checkpoint)."""
    from cantus.melody.training import (
        CONTROL_DROPOUT,
        FIM_RATE,
        MINOR_DRAWS,
        SHIPPED_MINUTES,
        train_melody_command,
    )
    from cantus.settings import load_settings

    train_melody_command(
        out or load_settings().melody_checkpoint,
        steps=steps,
        # neither: the shipped checkpoint's 40 minutes; --steps alone: a reproducible run
        minutes=SHIPPED_MINUTES if steps is None and minutes is None else minutes,
        config_name=config,
        seed=seed,
        kv_heads=kv_heads,
        minor_draws=MINOR_DRAWS if minor_draws is None else minor_draws,
        key_labels=key_labels,
        control_dropout=CONTROL_DROPOUT if control_dropout is None else control_dropout,
        threads=threads,
        fim_rate=FIM_RATE if fim_rate is None else fim_rate,
        init_from=init_from,
        lr=lr,
        contour=contour,
        tonality=tonality,
    )


@train_app.command("harmony")
def train_harmony(
    steps: Annotated[int, typer.Option(help="Optimiser steps (the checkpoint: 3600)")] = 3600,
    minutes: Annotated[float, typer.Option(help="Safety cap on wall-clock time")] = 20.0,
    out: Annotated[Path | None, typer.Option(help="Checkpoint path")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train the harmony model on the Bach chorales shipped in music21 and folk and celtic
    melodies with derived chords (cantus.harmony.dataset); reproduces
    shared/cantus/checkpoints/harmony_gru.pt."""
    from cantus.harmony.training import train_harmony as run_training
    from cantus.settings import load_settings

    settings = load_settings()
    run_training(
        out=out or settings.harmony_checkpoint,
        cache_dir=settings.state_dir / "harmony",
        steps=steps,
        minutes=minutes,
        seed=seed,
        log=lambda line: console.print(line),
    )


@train_app.command("lyrics")
def train_lyrics(
    minutes: Annotated[float, typer.Option(help="Wall-clock budget per language")] = 6.0,
    language: Annotated[list[str] | None, typer.Option(help="en and/or zh (default both)")] = None,
    model: Annotated[
        str, typer.Option(help="transformer (registry corpora, `make lyric-data`) or lstm")
    ] = "transformer",
) -> None:
    """Train the English and Mandarin lyric LMs and build their lexicons (reproduces
    checkpoints/lyric_*.pt and lyric_lexicon_*.npz). The transformer is installed only if
    it beats the LSTM on held-out perplexity; lstm retrains the LSTM (lyric_lstm_*: its
    fortunes files and, with `make lyric-data`, the registry corpus's song and everyday
    English, the Mandarin ci). Which of the two lyric_lm serves is the lyric_models
    setting."""
    from cantus.settings import REPO_ROOT

    if model == "transformer":
        from cantus.lyrics.sources import LYRIC_DATA_DIR
        from cantus.lyrics.training import CHECKPOINT_DIR
        from cantus.lyrics.transformer_training import train_transformer_command

        train_transformer_command(
            minutes=minutes,
            languages=tuple(language or LYRICS_LANGUAGES),
            checkpoint_dir=CHECKPOINT_DIR,
            work_dir=LYRIC_DATA_DIR,
            log_path=REPO_ROOT / "docs" / "results" / "lyrics_training.log",
        )
        return
    if model != "lstm":
        raise typer.BadParameter(f"--model {model}: transformer or lstm")
    from cantus.lyrics.training import train_lyrics_command

    train_lyrics_command(
        minutes=minutes,
        languages=tuple(language or LYRICS_LANGUAGES),
        log_path=REPO_ROOT / "docs" / "results" / "lyrics_training.log",
    )


@bench_app.command("station")
def bench_station(
    stations: Annotated[int, typer.Option(help="Stations running at once")] = 8,
    minutes: Annotated[float, typer.Option(help="Length of each phase")] = 5.0,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 16,
    buffer: Annotated[int, typer.Option(help="Pieces each station composes ahead")] = 2,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            help="Profile the loaded phase: CPU per component, process and step (/proc and "
            "py-spy), the stack's idle CPU and the synthesis-only floor; the report is "
            "written to this file, py-spy's folded stacks beside it"
        ),
    ] = None,
) -> None:
    """How many stations the running stack keeps ahead of real-time playback."""
    from cantus.bench.station import format_report, run_station_bench
    from cantus.bench.station_profile import format_station_profile
    from cantus.settings import load_settings

    settings = load_settings()
    stacks_dir = None if profile is None else profile.with_name(profile.stem + "_stacks")
    baseline, loaded, measured = run_station_bench(
        f"{settings.host}:{settings.gateway_port}",
        stations=stations,
        minutes=minutes,
        bars=bars,
        buffer=buffer,
        profile_dir=stacks_dir,
    )
    command = _invoked_command()
    text = format_report(baseline, loaded, command=command, bars=bars, buffer=buffer)
    _emit_report(text, out)
    if profile is not None and measured is not None:
        profile.write_text(format_station_profile(measured, command=command))
        typer.echo(f"profile written to {profile}; py-spy's folded stacks in {stacks_dir}")


@bench_app.command("chaos")
def bench_chaos(
    trials: Annotated[int, typer.Option(help="Kill -9 trials (at most)")] = 40,
    minutes: Annotated[float, typer.Option(help="Start no trial after this many minutes")] = 60.0,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the victims, kill points and pieces")] = 0,
    victims: Annotated[
        str,
        typer.Option(
            help="Comma-separated components to choose victims from (also: triton, broker; "
            "with broker, the stack's broker runs on --broker-storage local-s3)"
        ),
    ] = "melody,harmony,lyric,render,station,gateway",
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
    scenario: Annotated[
        str,
        typer.Option(
            help="kill (the kill -9 campaign), or comma-separated clients, hostile, burst, large "
            "(cantus.bench.clients: their sections are written into --out in place; burst and "
            "large: that client step alone)"
        ),
    ] = "kill",
    cases: Annotated[int, typer.Option(help="hostile: invalid requests to send")] = 10_000,
    burst: Annotated[int, typer.Option(help="clients: Compose calls at once")] = 200,
    lyrics: Annotated[
        str,
        typer.Option(
            help="kill: compose the trials' pieces with lyrics on this theme (so melody, "
            "harmony and lyric all call Triton; for --victims triton)"
        ),
    ] = "",
) -> None:
    """Kill -9 campaign on a private supervised stack: a random stream service, the station
    service or the gateway per trial; pieces completed, bars exactly once, recovery times.
    ``--scenario clients,hostile``: misbehaving clients, a burst and hostile input instead."""
    from cantus.bench.chaos import EXTRA_VICTIMS, VICTIMS, format_report, run_chaos_bench

    if scenario != "kill":
        from cantus.bench.clients import run_scenarios_cli

        failed = run_scenarios_cli(
            scenario,
            seed=seed,
            bars=bars,
            cases=cases,
            burst=burst,
            out=out,
            command=_invoked_command(),
            log=lambda line: console.print(line, soft_wrap=True),
        )
        if failed:
            raise typer.Exit(1)
        return

    if bars < 2:
        raise typer.BadParameter("--bars: at least 2 (the kill comes between bars)")
    chosen = tuple(v.strip() for v in victims.split(",") if v.strip())
    unknown = [v for v in chosen if v not in VICTIMS + EXTRA_VICTIMS]
    if not chosen or unknown:
        raise typer.BadParameter(f"--victims: choose from {', '.join(VICTIMS + EXTRA_VICTIMS)}")
    report = run_chaos_bench(
        trials=trials,
        minutes=minutes,
        bars=bars,
        seed=seed,
        victims=chosen,
        lyrics_theme=lyrics,
        log=lambda line: console.print(line, soft_wrap=True),
    )
    _emit_report(format_report(report, command=_invoked_command()), out)
    if any(not t.completed for t in report.trials):
        raise typer.Exit(1)


@bench_app.command("soak")
def bench_soak(
    stations: Annotated[int, typer.Option(help="Stations side by side")] = 8,
    minutes: Annotated[float, typer.Option(help="How long they stream")] = 60.0,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 8,
    buffer: Annotated[int, typer.Option(help="Pieces each station buffers")] = 2,
    sample_s: Annotated[float, typer.Option(help="Seconds between samples")] = 10.0,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
) -> None:
    """Stations on a private supervised stack for ``--minutes``: RSS and open descriptors per
    component at start and end, and whether memory stayed flat (#22)."""
    from cantus.bench.soak import format_report, run_soak_bench

    report = run_soak_bench(
        stations=stations,
        minutes=minutes,
        bars=bars,
        buffer=buffer,
        sample_s=sample_s,
        log=lambda line: console.print(line, soft_wrap=True),
    )
    _emit_report(format_report(report, command=_invoked_command()), out)
    if report.error:
        raise typer.Exit(1)


@bench_app.command("pipeline")
def bench_pipeline(
    pieces: Annotated[int, typer.Option(help="Pieces to compose")] = 20,
    concurrency: Annotated[int, typer.Option(help="Pieces in flight at once")] = 4,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 16,
    lyrics: Annotated[
        str, typer.Option(help="Lyrics theme every piece asks for (default: no lyrics)")
    ] = "",
    lang: Annotated[str, typer.Option(help="Language of the lyrics: en or zh")] = "",
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
) -> None:
    """Time to first bar and per-stage latency (p50/p95) from the events' timestamps."""
    from cantus.bench.pipeline import format_report, run_pipeline_bench
    from cantus.settings import load_settings

    settings = load_settings()
    report = run_pipeline_bench(
        f"{settings.host}:{settings.gateway_port}",
        pieces=pieces,
        concurrency=concurrency,
        bars=bars,
        lyrics_theme=lyrics,
        lyrics_language=lang,
    )
    text = format_report(report, command=_invoked_command())
    _emit_report(text, out)


@bench_app.command("decode")
def bench_decode(
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Melody checkpoint")] = None,
    triton: Annotated[
        str | None, typer.Option(help="Use this Triton (host:port) instead of starting one")
    ] = None,
) -> None:
    """Tokens/s at 1..32 Triton streams, time per token vs context (KV cache on/off), and
    transformers generate() on a same-size GPT-2."""
    from cantus.bench.decode import format_report, run_decode_bench
    from cantus.settings import load_settings

    report = run_decode_bench(
        checkpoint or load_settings().melody_checkpoint,
        triton_address=triton,
        log=lambda line: console.print(line),
    )
    text = format_report(report, command=_invoked_command())
    _emit_report(text, out)


@eval_app.command("melody")
def eval_melody(
    pieces: Annotated[int, typer.Option(help="Generated pieces per setting")] = 100,
    lstm_token_share: Annotated[
        float | None,
        typer.Option(help="LSTM baseline budget: this share of the transformer's tokens [1.0]"),
    ] = None,
    lstm_minutes: Annotated[
        float | None, typer.Option(help="Cap on the LSTM baseline's training time [90]")
    ] = None,
    extra_seed_sets: Annotated[
        int, typer.Option(help="Sample the key-constrained pieces again with N more seed sets")
    ] = 0,
    quick: Annotated[bool, typer.Option(help="Small smoke run")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Melody checkpoint")] = None,
) -> None:
    """Held-out NLL against n-gram and LSTM baselines; key, metre and cadence of generated
    pieces; pitch-class and interval KL against the test set."""
    import torch

    from cantus.eval.melody import (
        DEFAULT_LSTM_MINUTES,
        DEFAULT_LSTM_TOKEN_SHARE,
        format_report,
        run_melody_eval,
    )
    from cantus.settings import load_settings

    torch.set_num_threads(2)
    command = _invoked_command()
    report = run_melody_eval(
        checkpoint or load_settings().melody_checkpoint,
        pieces_per_setting=pieces,
        extra_seed_sets=extra_seed_sets,
        # unset: the evaluation's own defaults (one definition, in cantus.eval.melody)
        lstm_minutes=DEFAULT_LSTM_MINUTES if lstm_minutes is None else lstm_minutes,
        lstm_token_share=(
            DEFAULT_LSTM_TOKEN_SHARE if lstm_token_share is None else lstm_token_share
        ),
        out=out,
        quick=quick,
        command=command,
        log=lambda line: console.print(line),
    )
    print(format_report(report, command=command))


@eval_app.command("realness")
def eval_realness(
    pieces: Annotated[int, typer.Option(help="Melodies to sample")] = 200,
    bars: Annotated[int, typer.Option(help="Bars per melody (the compared window)")] = 16,
    tonal_emphasis: Annotated[
        float, typer.Option(help="Decoding-time key emphasis in nats (the service's is 0)")
    ] = 0.0,
    guidance: Annotated[
        float | None,
        typer.Option(
            help="Classifier-free guidance on the key (1: none); unset: the service's where "
            "the checkpoint was trained for it"
        ),
    ] = None,
    expand_repeats: Annotated[
        bool, typer.Option(help="Also measure held-out celtic tunes with repeats written out")
    ] = True,
    seed: Annotated[int, typer.Option()] = 0,
    composer: Annotated[
        str,
        typer.Option(
            help="form: along a form plan, as the service composes; model: one free request"
        ),
    ] = "form",
    top_p: Annotated[
        float | None,
        typer.Option(help="Nucleus of the form composer's sampling; unset: the service's"),
    ] = None,
    upbeats: Annotated[
        bool,
        typer.Option(
            help="Phrases lead on as often as the corpus's (the service's); off: as the "
            "model likes, as before session 16"
        ),
    ] = True,
    key_candidates: Annotated[
        int | None,
        typer.Option(
            help="Phrases decoded per kept one, chosen by how clearly they keep the key; "
            "unset: the service's"
        ),
    ] = None,
    register_contrast: Annotated[
        bool | None,
        typer.Option(
            "--register-contrast/--no-register-contrast",
            help="Contrasting sections chosen near a register drawn from the corpus's second "
            "strains; unset: the service's",
        ),
    ] = None,
    corpus_key_clarity: Annotated[
        bool | None,
        typer.Option(
            "--corpus-key-clarity/--no-corpus-key-clarity",
            help="Phrases chosen in key need leave their key area only as clear as most real "
            "tunes are at that length; off: reading in the asked key from the first phrase on; "
            "unset: the service's",
        ),
    ] = None,
    register_window: Annotated[
        bool | None,
        typer.Option(
            "--register-window/--no-register-window",
            help="Contrasting sections decoded inside a window of pitches around their drawn "
            "register; unset: the service's",
        ),
    ] = None,
    pickups: Annotated[
        bool | None,
        typer.Option(
            "--pickups/--no-pickups",
            help="Pieces open with a pickup as often as the corpus's tunes of their style and "
            "meter; off: on the downbeat; unset: the service's",
        ),
    ] = None,
    corpus_forms: Annotated[
        bool | None,
        typer.Option(
            "--corpus-forms/--no-corpus-forms",
            help="Each piece's auto form drawn as often as the corpus's tunes of its style and "
            "meter are shaped so; off: auto picks by length (AABA); unset: the service's",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = Path(
        "docs/results/melody_realness.md"
    ),
    checkpoint: Annotated[Path | None, typer.Option(help="Melody checkpoint")] = None,
) -> None:
    """Generated melodies against held-out real tunes: feature means and bands, MGEval
    overlap, a classifier's cross-validated accuracy (with a real-vs-real control), key
    agreement per key and repetition structure."""
    import torch

    from cantus.eval.realness_run import format_run, run_realness_eval
    from cantus.settings import load_settings

    torch.set_num_threads(2)
    run = run_realness_eval(
        checkpoint or load_settings().melody_checkpoint,
        pieces=pieces,
        n_bars=bars,
        tonal_emphasis=tonal_emphasis,
        guidance=guidance,
        expand_repeats=expand_repeats,
        seed=seed,
        composer=composer,
        top_p=top_p,
        lead_on=upbeats,
        key_candidates=key_candidates,
        register_contrast=register_contrast,
        corpus_key_clarity=corpus_key_clarity,
        register_window=register_window,
        pickups=pickups,
        corpus_forms=corpus_forms,
        log=lambda line: console.print(line),
    )
    _emit_report(format_run(run, command=_invoked_command()), out)


@eval_app.command("energy")
def eval_energy(
    pieces: Annotated[int, typer.Option(help="Pieces per style and energy level")] = 12,
    bars: Annotated[int, typer.Option(help="Bars per piece (a session piece's 8)")] = 8,
    seed: Annotated[
        int, typer.Option(help="0: the run ENERGY_MEDIANS come from; another: out of sample")
    ] = 0,
    level_pieces: Annotated[
        int, typer.Option(help="Pieces re-struck for the level calibration (0: none)", min=0)
    ] = 6,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = Path(
        "docs/results/energy.md"
    ),
) -> None:
    """Energy asked against energy played (#17): pieces composed in process at each level,
    measured by midi_energy; then the stream level's effect on the energy heard."""
    from cantus.eval.energy import format_run, run_energy_eval

    with console.status(f"composing {9 * pieces} pieces in process…"):
        run = run_energy_eval(pieces, bars=bars, seed=seed, level_pieces=level_pieces)
    command = f"cantus eval energy --pieces {pieces} --bars {bars} --seed {seed}"
    if level_pieces != 6:
        command += f" --level-pieces {level_pieces}"
    if out is not None:
        command += f" --out {out}"
    report = format_run(run, command=command)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
    print(report)


@eval_app.command("harmony")
def eval_harmony(
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = Path(
        "docs/results/harmony_eval.md"
    ),
    checkpoint: Annotated[Path | None, typer.Option(help="Harmony checkpoint")] = None,
) -> None:
    """Held-out chorales, soprano given: the model, Bach, the rule-based harmoniser and an
    HMM side by side (CHE, CC, CTD, CTnCTR, PCS, MCTD, root agreement, parallels); then the
    style and energy controls' effect on the same held-out melodies."""
    from cantus.eval.harmony import (
        format_controls,
        format_report,
        run_controls_eval,
        run_harmony_eval,
    )
    from cantus.settings import load_settings

    settings = load_settings()
    command = _invoked_command()
    report = run_harmony_eval(
        checkpoint or settings.harmony_checkpoint,
        cache_dir=settings.state_dir / "harmony",
        log=lambda line: console.print(line),
    )
    controls = run_controls_eval(
        checkpoint or settings.harmony_checkpoint,
        cache_dir=settings.state_dir / "harmony",
        log=lambda line: console.print(line),
    )
    text = format_report(report, command=command) + "\n" + format_controls(controls)
    _emit_report(text, out)


@eval_app.command("arrangement")
def eval_arrangement(
    pieces: Annotated[int, typer.Option(help="Pieces composed in process")] = 24,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the requests and the sampling")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
) -> None:
    """Is the melody the top voice? Masking rate from piece.mid and the melody's margin in
    its band of the mixed audio over pieces composed in process (mixed keys, meters, styles,
    moods), and each palette's streamed real-time factor."""
    from cantus.eval.arrangement import format_run, run_arrangement_eval

    with console.status(f"composing and arranging {pieces} pieces…"):
        run = run_arrangement_eval(pieces, bars=bars, seed=seed)
    _emit_report(format_run(run, command=_invoked_command()), out)


@eval_app.command("vocals")
def eval_vocals(
    pieces: Annotated[int, typer.Option(help="Pieces per language")] = 4,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the requests and the sampling")] = 0,
    seeds: Annotated[int, typer.Option(help="Seeds from --seed on, --pieces each")] = 1,
    language: Annotated[list[str] | None, typer.Option(help="en and/or zh (default both)")] = None,
    examples: Annotated[
        Path | None, typer.Option(help="Write each language's first piece here (opus, F0 plot)")
    ] = None,
    candidates: Annotated[
        bool, typer.Option(help="Compare WORLD, Praat PSOLA and Festival on one piece")
    ] = True,
    intelligibility: Annotated[
        bool, typer.Option(help="Recognise the English lines sung, spoken and as controls")
    ] = True,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
) -> None:
    """Sung lyrics: the vocal stem's F0 against the melody, vowel onsets against note
    onsets, intelligibility by pocketsphinx sung against spoken, the mix's loudness and
    true peak, and the streamed real-time factor with vocals, on pieces composed in process."""
    from cantus.eval.vocals import format_run, run_vocals_eval

    run = run_vocals_eval(
        pieces=pieces,
        bars=bars,
        seed=seed,
        seeds=seeds,
        languages=tuple(language or ("en", "zh")),
        examples=examples,
        candidates=candidates,
        intelligibility=intelligibility,
        log=lambda message: console.print(message),
    )
    _emit_report(format_run(run, command=_invoked_command()), out)


@eval_app.command("lyrics")
def eval_lyrics(
    pieces: Annotated[int, typer.Option(help="Pieces per language")] = 100,
    language: Annotated[list[str] | None, typer.Option(help="en and/or zh (default both)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
    songs: Annotated[int, typer.Option(help="Verse-chorus songs per language")] = 10,
    beam: Annotated[int | None, typer.Option(help="Decoder beam (default: served)")] = None,
    noise: Annotated[
        float | None, typer.Option(help="Decoder Gumbel noise scale, both languages")
    ] = None,
    theme_weight: Annotated[float | None, typer.Option(help="Per-word theme weight")] = None,
    line_theme_weight: Annotated[float | None, typer.Option(help="Line theme weight")] = None,
    generic_weight: Annotated[
        float | None,
        typer.Option(help="Anti-LM (maximum mutual information) weight, both languages"),
    ] = None,
    compare_decoders: Annotated[
        bool, typer.Option(help="Also decode with the plain beam search of before (PLAIN_BEAM)")
    ] = True,
    compare_shared: Annotated[
        bool,
        typer.Option(
            help="Also decode without the per-piece word dropout and verse words (SHARED_WORDS)"
        ),
    ] = True,
    compare_clauses: Annotated[
        bool,
        typer.Option(
            help="Also decode Mandarin lines whole, not in clauses (WHOLE_LINES), and on lines "
            "without ci stanzas (clauses by breath)"
        ),
    ] = True,
    served_only: Annotated[
        bool, typer.Option(help="Only the served LM (lyric_models), not both")
    ] = False,
    register_pieces: Annotated[
        int,
        typer.Option(help="Pieces per register asked of the transformer (0: no register check)"),
    ] = 10,
    jobs: Annotated[int, typer.Option(help="Languages evaluated in parallel processes")] = 1,
) -> None:
    """Constrained lyric decoding on both lyric LMs (transformer, LSTM), with the current
    decoder and the plain beam search before it, against the served LM sampled without
    constraints and held-out human lines: syllable fit, stress on strong beats, rhyme
    compliance, theme similarity, distinct-2, repeated lines, Mandarin tone-contour
    agreement, Link Grammar parse rate, judge perplexity; which LM reads better against
    the one served (lyric_models); verse-chorus songs."""
    from cantus.eval.lyrics import format_report, run_lyrics_eval

    given = {
        "beam": beam,
        "noise": noise,
        "theme_weight": theme_weight,
        "line_theme_weight": line_theme_weight,
        "generic_weight": generic_weight,
    }
    command = _invoked_command()
    report = run_lyrics_eval(
        pieces=pieces,
        languages=tuple(language or LYRICS_LANGUAGES),
        overrides={name: value for name, value in given.items() if value is not None},
        songs=songs,
        compare_decoders=compare_decoders,
        compare_shared=compare_shared,
        compare_clauses=compare_clauses,
        served_only=served_only,
        register_pieces=register_pieces,
        jobs=jobs,
        log=lambda line: console.print(line),
    )
    text = format_report(report, command=command)
    _emit_report(text, out)


@bench_app.command("render")
def bench_render(
    pieces: Annotated[int, typer.Option(help="Generated arrangements to render")] = 20,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 16,
    preset: Annotated[str, typer.Option(help="Mastering preset: streaming or broadcast")] = (
        "streaming"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the first arrangement")] = 0,
    profile: Annotated[
        bool,
        typer.Option(
            help="Instead: CPU time by step of the render service's handler over whole "
            "form pieces (--pieces of --bars), in process"
        ),
    ] = False,
    palettes: Annotated[
        int,
        typer.Option(
            help="Also stream this many composed pieces (shipped models) in every palette: "
            "each palette's real-time factor by CPU time; 0: skip"
        ),
    ] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
) -> None:
    """Synthesis + mixing + mastering: real-time factor streamed and offline, loudness
    error against the preset, true peak, clicks at segment joints; with --palettes, per
    palette. With --profile: where the render service's CPU time goes, step by step."""
    import json
    import platform
    import time

    if profile:
        from cantus.bench.render_profile import format_profile, run_render_profile

        with console.status(f"rendering {pieces} form pieces through the render handler…"):
            result = run_render_profile(pieces, bars=bars)
        text = "\n".join(
            [
                "# Render profile",
                "",
                f"Command: `{_invoked_command()}` ({platform.machine()}, "
                f"Python {platform.python_version()}, {os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.2f} at the end).",
                "",
                format_profile(result),
                "",
            ]
        )
        _emit_report(text, out)
        return
    from cantus.bench.render import (
        format_palette_speeds,
        format_report,
        run_palette_bench,
        run_render_bench,
    )

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with console.status(f"rendering {pieces} pieces…"):
        report = run_render_bench(pieces, preset=preset, bars=bars, seed=seed)
    palette_section: list[str] = []
    if palettes:
        speeds = run_palette_bench(
            palettes, bars=bars, seed=seed, log=lambda line: console.print(line)
        )
        palette_section = [
            "## Per palette (streamed, CPU time)",
            "",
            f"{palettes} pieces of {bars} bars composed in process (the first of `cantus eval "
            "arrangement`'s mixed requests: shipped melody and harmony models, form `auto`), "
            "each streamed in every palette in 4-bar segments through the render service's "
            "`SegmentAudio` (FluidSynth, mix, streaming master). RTF by CPU time is seconds of "
            "audio per second of this process's CPU (what one free core gives; goal >= 20); "
            "the wall clock also counts the machine's other work. Loudness error against "
            f"{report.target_lufs:g} LUFS (goal <= 0.5 LU), true peak against "
            f"{report.ceiling_dbtp:g} dBTP.",
            "",
            format_palette_speeds(speeds, report.target_lufs),
            "",
        ]
    wall = time.perf_counter() - started
    command = _invoked_command()
    text = "\n".join(
        [
            "# Render benchmark",
            "",
            f"Command: `{command}` ({wall:.0f} s wall, {platform.machine()}, "
            f"Python {platform.python_version()}; {os.cpu_count()} CPU cores shared with "
            f"other work, load average {load_before:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end).",
            "",
            "Each generated arrangement is rendered as the render service does: streamed in "
            "segments of 4 bars (`SegmentRenderer` + `StreamingMaster`) and mastered offline "
            "in one pass (`master`, the final files).",
            "",
            "```",
            format_report(report),
            "```",
            "",
            "```json",
            json.dumps(report.as_dict(), indent=2),
            "```",
            "",
            *palette_section,
        ]
    )
    _emit_report(text, out)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
