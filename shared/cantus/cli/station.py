"""``cantus station …`` and ``cantus plan``: the client side of the gateway's Station service.

``cantus station start NAME --config station.yaml`` starts (or reconfigures) a station and
prints where its HLS stream and playlist feeds are; ``cantus plan --from 110,0.8,0.9 --to
65,0.1,0.2 --minutes 20`` plans a session, starts composing it and prints the playlist;
``cantus plan --preset walk`` starts a listening session (closed loop) and ``cantus signal
NAME --cadence 104`` sends it a listener's reading.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.table import Table

from cantus.cli.compose import open_channel
from cantus.settings import load_settings
from cantus.stations.plans import PlanError, State
from cantus.v1 import station_pb2 as st
from cantus.v1 import station_pb2_grpc as st_grpc

station_app = typer.Typer(
    help="Stations: continuous, non-repeating programs.", no_args_is_help=True
)
console = Console(stderr=True)


def _stub(gateway: str | None) -> st_grpc.StationStub:
    settings = load_settings()
    return st_grpc.StationStub(
        open_channel(gateway or f"{settings.host}:{settings.gateway_port}", settings)
    )


def _fail(error: grpc.RpcError) -> None:
    console.print(f"[red]error:[/] {error.details()}")
    raise typer.Exit(1)


def _urls(name: str) -> str:
    settings = load_settings()
    base = f"http://{settings.host}:{settings.gateway_http_port}"
    return (
        f"stream   {base}/stations/{name}/live.m3u8\n"
        f"playlist {base}/stations/{name}/playlist.m3u  {base}/stations/{name}/playlist.json\n"
        f"player   {base}/?station={name}"
    )


def print_program(status: st.StationStatus) -> None:
    table = Table(title=f"station {status.name} ({'running' if status.running else 'stopped'})")
    for column in ("#", "title", "key", "BPM", "mood", "energy", "s", "LUFS", "status"):
        table.add_column(column)
    for e in status.program:
        table.add_row(
            str(e.position + 1),
            e.title,
            f"{e.key} {e.mode}",
            f"{e.tempo_bpm:g}",
            e.mood,
            e.energy,
            f"{e.duration_seconds:.1f}",
            f"{e.integrated_lufs:.1f}",
            e.status + (f" ({e.reason})" if e.reason else ""),
        )
    Console().print(table)


@station_app.command("start")
def start(
    name: Annotated[str, typer.Argument(help="Station name: lower-case letters, digits, dashes")],
    config: Annotated[
        Path | None, typer.Option(help="station.yaml (default: the defaults)")
    ] = None,
    gateway: Annotated[str | None, typer.Option(help="Gateway host:port")] = None,
) -> None:
    """Start (or reconfigure) a station; it keeps composing ahead of playback."""
    try:
        text = config.read_text() if config is not None else ""
    except OSError as error:
        console.print(f"[red]error:[/] --config: cannot read {config}: {error.strerror}")
        raise typer.Exit(2) from None
    try:
        status = _stub(gateway).StartStation(
            st.StartStationRequest(name=name, config_yaml=text), timeout=60
        )
    except grpc.RpcError as error:
        _fail(error)
    console.print(f"[green]✓[/] station {status.name} running")
    print(_urls(name))


@station_app.command("stop")
def stop(name: str, gateway: Annotated[str | None, typer.Option()] = None) -> None:
    """Stop composing for a station (its stream and playlist stay readable)."""
    try:
        status = _stub(gateway).StopStation(st.StationName(name=name), timeout=60)
    except grpc.RpcError as error:
        _fail(error)
    print_program(status)


@station_app.command("status")
def status(name: str, gateway: Annotated[str | None, typer.Option()] = None) -> None:
    """The station's program with now-playing metadata."""
    try:
        found = _stub(gateway).GetStation(st.StationName(name=name), timeout=30)
    except grpc.RpcError as error:
        _fail(error)
    print_program(found)
    print(_urls(name))


@station_app.command("feedback")
def feedback(
    name: str,
    piece_id: str,
    kind: Annotated[str, typer.Argument(help="like or skip")],
    gateway: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Like or skip a piece: steers the station's next choices."""
    try:
        _stub(gateway).SendFeedback(
            st.StationFeedback(station=name, piece_id=piece_id, kind=kind), timeout=60
        )
    except grpc.RpcError as error:
        _fail(error)
    console.print(f"[green]✓[/] {kind} sent")


def plan(
    start_state: Annotated[
        str,
        typer.Option("--from", help="Listener now: TEMPO[,ENERGY[,VALENCE]] e.g. 110,0.8,0.9"),
    ] = "",
    target_state: Annotated[
        str, typer.Option("--to", help="Target: TEMPO[,ENERGY[,VALENCE]] e.g. 65,0.1,0.2")
    ] = "",
    minutes: Annotated[float, typer.Option(help="Session length in minutes")] = 0.0,
    pieces: Annotated[int, typer.Option(help="Number of pieces (instead of minutes)")] = 0,
    bars: Annotated[int, typer.Option(help="Bars per piece")] = 0,
    style: Annotated[str, typer.Option(help="folk, celtic or chorale")] = "",
    preset: Annotated[
        str, typer.Option(help="A listening session: sleep, focus, relax or walk")
    ] = "",
    session: Annotated[
        str,
        typer.Option(
            help="Session settings as YAML over the preset's, e.g. 'mode: open' "
            "(cantus.stations.sessions.SessionConfig)"
        ),
    ] = "",
    name: Annotated[str, typer.Option(help="Station name of the session")] = "",
    wait: Annotated[bool, typer.Option(help="Wait until every piece is delivered")] = False,
    gateway: Annotated[str | None, typer.Option(help="Gateway host:port")] = None,
) -> None:
    """Plan a therapy session (iso principle) and compose it; prints the playlist. With
    --preset or --session it is a listening session that steers by the listener's signals
    (`cantus signal`); the playlist printed is then its open-loop reference."""
    listening = bool(preset or session)
    try:
        if not listening and not (start_state and target_state):
            raise PlanError("from", "give --from and --to, or a --preset")
        start_at = State.parse(start_state, "from") if start_state else None
        target = State.parse(target_state, "to") if target_state else None
    except PlanError as error:
        console.print(f"[red]error:[/] --{error}")
        raise typer.Exit(2) from None
    stub = _stub(gateway)
    request = st.PlanRequest(
        minutes=minutes,
        pieces=pieces,
        bars=bars or (0 if listening else 16),
        style=style or ("" if listening else "folk"),
        plan_name=name,
        preset=preset,
        session_yaml=session,
    )
    if start_at is not None:
        request.start.CopyFrom(start_at.to_pb())
    if target is not None:
        request.target.CopyFrom(target.to_pb())
    try:
        reply = stub.PlanSession(request, timeout=60)
    except grpc.RpcError as error:
        _fail(error)
    table = Table(title=f"plan {reply.plan_name}")
    for column in ("step", "starts at", "BPM (bounds)", "energy", "mood", "key", "s"):
        table.add_column(column)
    for s in reply.steps:
        table.add_row(
            str(s.index + 1),
            f"{s.start_seconds / 60:.1f} min",
            f"{s.tempo_bpm:g} ({s.tempo_min_bpm:g}–{s.tempo_max_bpm:g})",
            f"{s.energy:.2f}",
            s.mood,
            f"{s.key} {s.mode}",
            f"{s.duration_seconds:.0f}",
        )
    Console().print(table)
    print(_urls(reply.plan_name))
    if listening:
        settings = load_settings()
        base = f"http://{settings.host}:{settings.gateway_http_port}/stations/{reply.plan_name}"
        print(f"outcome  {base}/session.json  {base}/session.csv")
    if wait:
        while True:
            found = stub.GetStation(st.StationName(name=reply.plan_name), timeout=30)
            if not found.running:
                break
            time.sleep(2)
        print_program(found)


REPORTS: dict[str, st.SignalKind] = {
    "too-fast": st.TOO_FAST,
    "too-slow": st.TOO_SLOW,
    "more-calm": st.MORE_CALM,
}


def signal(
    name: Annotated[str, typer.Argument(help="The session's station name")],
    heart_rate: Annotated[float | None, typer.Option(help="Heart rate, BPM")] = None,
    cadence: Annotated[float | None, typer.Option(help="Step cadence, steps per minute")] = None,
    mood: Annotated[str | None, typer.Option(help="Self-reported VALENCE,AROUSAL (0..1)")] = None,
    report: Annotated[str | None, typer.Option(help="too-fast, too-slow or more-calm")] = None,
    intensity: Annotated[
        float | None, typer.Option(help="Intensity 0..1 (0.5: as planned)")
    ] = None,
    gateway: Annotated[str | None, typer.Option(help="Gateway host:port")] = None,
) -> None:
    """Send listener signals to a running session (stamped now)."""
    now = time.time_ns()
    signals: list[st.ListenerSignal] = []

    def add(kind: st.SignalKind, value: float = 0.0, **mood_fields: float) -> None:
        signals.append(
            st.ListenerSignal(
                station=name, measured_unix_ns=now, kind=kind, value=value, **mood_fields
            )
        )

    if heart_rate is not None:
        add(st.HEART_RATE, heart_rate)
    if cadence is not None:
        add(st.STEP_CADENCE, cadence)
    if mood is not None:
        try:
            valence, arousal = (float(x) for x in mood.split(","))
        except ValueError:
            console.print(f"[red]error:[/] --mood: {mood!r} is not VALENCE,AROUSAL")
            raise typer.Exit(2) from None
        add(st.MOOD, valence=valence, arousal=arousal)
    if report is not None:
        if report not in REPORTS:
            console.print(f"[red]error:[/] --report: {report!r} is not one of {', '.join(REPORTS)}")
            raise typer.Exit(2)
        add(REPORTS[report])
    if intensity is not None:
        add(st.INTENSITY, intensity)
    if not signals:
        console.print("[red]error:[/] give a signal (--heart-rate, --cadence, --mood, …)")
        raise typer.Exit(2)
    try:
        accepted = _stub(gateway).SendSignals(iter(signals), timeout=30)
    except grpc.RpcError as error:
        _fail(error)
    console.print(f"[green]✓[/] {accepted.count} signal(s) sent")


def bench_therapy(
    listeners: Annotated[int, typer.Option(help="Simulated listeners per preset")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the listeners and their sensors")] = 17,
    stream_seconds: Annotated[
        float,
        typer.Option(
            help="Wall-clock seconds of a session's stream start on a real encoder, beside "
            "a station's, counting underruns (0: skip)",
            min=0,
        ),
    ] = 90.0,
    render_rtf: Annotated[
        float, typer.Option(help="How fast the stream bench's pieces arrive (x real time)")
    ] = 1.35,
    out: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here")] = None,
) -> None:
    """Closed-loop sessions against today's open-loop plan on simulated listeners: rate-led
    presets (walk, relax, sleep), then focus steered by self-reports and intensity; then a
    session's stream start on the station's own code and a real encoder (underruns)."""
    import sys

    from cantus.bench.therapy import format_report, run_therapy_bench
    from cantus.bench.therapy_reports import format_report_section, run_report_bench

    results = run_therapy_bench(listeners=listeners, seed=seed)
    command = " ".join(["cantus", *sys.argv[1:]])
    text = f"# Therapy sessions: closed loop against open loop\n\n`{command}`\n\n"
    text += format_report(results, listeners, seed)
    text += "\n" + format_report_section(run_report_bench(listeners, seed), listeners)
    if stream_seconds > 0:
        from cantus.bench.session_stream import (
            format_stream_section,
            machine_load,
            run_session_stream_bench,
        )

        runs = run_session_stream_bench(stream_seconds, render_rtf=render_rtf)
        text += "\n" + format_stream_section(runs, render_rtf=render_rtf, load=machine_load())
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
