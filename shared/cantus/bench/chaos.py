"""``cantus bench chaos``: a kill -9 campaign against an embedded stack of its own (#22).

The bench starts a private stack (its own state folder and free loopback ports) the way
``cantus up`` does, supervisor included. Each trial picks a victim at random from melody,
harmony, lyric, render, station and gateway and kills its whole process group with SIGKILL at
a random point; ``cantus up``'s supervisor (cantus.supervisor) restarts it. Nothing else in the
stack is touched.

* A **piece trial** (every victim but station) composes an ``bars``-bar piece and kills the
  victim once the client has seen a random number of its melody bars (1 … bars-1). Counted:
  the piece completed; melody bars, harmony bars and audio segments the client received, each
  index exactly once and none missing (the gateway kill cuts the client's stream: what came
  before the cut is checked, and the piece is then fetched with ``GetPiece``); piece.json's
  event log has every melody bar, harmony bar and lyric line exactly once; and piece.mid's
  melody track plays piece.json's notes bar after bar, none twice and none missing.
* A **station trial** starts a station, waits until its stream plays, kills the station service
  a random 0-8 s later and waits for two more pieces to stream. Counted: the program before the
  kill kept, pieces streamed after it, and audio gaps (the station's underruns: times playback
  would have run dry) during the trial.
* **Triton** (``--victims triton``, restarted by the bench): with ``lyrics_theme`` the pieces
  have lyrics, so melody, harmony and lyric all call Triton; each trial counts, per service,
  the times it found Triton unavailable for the piece and waited (its log's "a model server
  is unavailable" lines naming the piece) instead of failing it or falling back.
* **Time to recover**: from the kill to the supervisor's restarted process passing its health
  check, and (piece trials) from the kill to the next event of the piece reaching the client.

Bounded by ``trials`` and by ``minutes``: no trial starts after the time is up.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cantus.stack import STREAM_SERVICES, private_stack_environment

VICTIMS = ("melody", "harmony", "lyric", "render", "station", "gateway")
"""The default campaign's victims: what `cantus up`'s supervisor restarts."""
EXTRA_VICTIMS = ("triton", "broker")
"""Victims only when asked for (``--victims``): Triton and the broker are restarted by the bench
itself (the supervisor does not restart them), as an operator or Kubernetes would, once they are
gone. With the broker among the victims, the stack's broker runs on the ``local-s3`` storage
(``cantus up --broker-storage local-s3``): on ``memory://`` a restart loses every topic."""
RESTARTED_BY_THE_BENCH = EXTRA_VICTIMS

STATION_CONFIG = """
styles: {folk: 1}
tempo_bpm: [120, 140]
meters: ['4/4']
bars: 4
buffer_pieces: 1
"""


def campaign_state_dir(prefix: str) -> contextlib.AbstractContextManager[str]:
    """The private stack's state folder: ``CANTUS_CHAOS_STATE_DIR`` when set (kept after the
    run, with every component's log under ``logs/``), else a temporary folder."""
    kept = os.environ.get("CANTUS_CHAOS_STATE_DIR")
    if kept:
        return contextlib.nullcontext(kept)
    return tempfile.TemporaryDirectory(prefix=prefix)


def campaign_environment(state_dir: Path, *, broker_storage: str = "memory") -> dict[str, str]:
    """``private_stack_environment`` with a long start-up timeout: a campaign runs on a
    machine busy with other work, where starting may take long."""
    return {
        **private_stack_environment(state_dir),
        "CANTUS_STARTUP_TIMEOUT_S": "600",
        "CANTUS_BROKER_STORAGE": broker_storage,
    }


# --- what a piece's output must look like ----------------------------------------------------


@dataclass
class Exactness:
    """Indices seen more than once, and expected indices never seen, per kind of output."""

    duplicates: dict[str, list[int]] = field(default_factory=dict)
    gaps: dict[str, list[int]] = field(default_factory=dict)

    def check(self, kind: str, indices: list[int], expected: range) -> None:
        counts = Counter(indices)
        duplicates = sorted(i for i, n in counts.items() if n > 1)
        gaps = sorted(set(expected) - set(counts))
        if duplicates:
            self.duplicates[kind] = duplicates
        if gaps:
            self.gaps[kind] = gaps

    @property
    def duplicate_count(self) -> int:
        return sum(len(v) for v in self.duplicates.values())

    @property
    def gap_count(self) -> int:
        return sum(len(v) for v in self.gaps.values())


def check_piece_files(folder: Path, bars: int, exactness: Exactness) -> None:
    """piece.json's event log holds every bar and line once; piece.mid's melody track plays
    piece.json's melody, bar after bar, each bar once (a bar twice or missing changes the
    note sequence, whatever the timing)."""
    import mido

    summary = json.loads((folder / "piece.json").read_text())
    log = summary["event_log"]
    # without lyrics each bar passes as its own empty line; with them, a line spans bars, and
    # its lines must cover the bars one after another from bar 0 to the last
    lines = summary.get("lyrics") or []
    covered = [
        bar
        for line in lines
        for bar in range(line["first_bar"], line["first_bar"] + line["bar_count"])
    ]
    if lines:
        exactness.check("piece.json lyrics bars", covered, range(bars))
    for kind in ("melody_bar", "harmony_bar", "lyric_line"):
        indices = [e["index"] for e in log if e["kind"] == kind]
        count = len(lines) if kind == "lyric_line" and lines else bars
        exactness.check(f"piece.json {kind}", indices, range(count))
    per_bar = summary["melody_per_bar"]
    expected = [pitch for bar in per_bar for _, pitch, _ in sorted(bar)]
    midi = mido.MidiFile(file=io.BytesIO((folder / "piece.mid").read_bytes()))
    names = [track.name for track in midi.tracks]
    played, now = [], 0
    for message in midi.tracks[names.index("melody")]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            played.append((now, message.note))
    pitches = [pitch for _, pitch in sorted(played)]
    if len(per_bar) < bars:
        exactness.gaps["piece.json melody_per_bar"] = list(range(len(per_bar), bars))
    elif len(per_bar) > bars:  # bars past the piece's end: named as extra, not an empty gap
        exactness.duplicates["piece.json melody_per_bar"] = list(range(bars, len(per_bar)))
    if pitches != expected:
        _name_the_bars(summary, sorted(played), exactness)


def _name_the_bars(summary: dict, played: list[tuple[int, int]], exactness: Exactness) -> None:
    """Which bars of piece.mid's melody have more notes than piece.json says (a bar twice)
    or fewer (a bar lost): notes counted per bar of the meter, an eighth of a bar early
    counting for the bar (humanised timing)."""
    numerator, denominator = (int(x) for x in summary["meter"].split("/"))
    bar_ticks = numerator * 4 * summary["ticks_per_quarter"] // denominator
    counts = Counter((tick + bar_ticks // 8) // bar_ticks for tick, _ in played)
    for bar, notes in enumerate(summary["melody_per_bar"]):
        if counts.get(bar, 0) > len(notes):
            exactness.duplicates.setdefault("piece.mid melody", []).append(bar)
        elif counts.get(bar, 0) < len(notes):
            exactness.gaps.setdefault("piece.mid melody", []).append(bar)
    if not exactness.duplicates.get("piece.mid melody") and not exactness.gaps.get(
        "piece.mid melody"
    ):
        exactness.gaps["piece.mid melody (notes differ)"] = [-1]


STAGES = ("last melody bar", "last segment", "final render started")


def piece_stages(summary: dict) -> dict[str, float]:
    """Seconds from the request (the gateway's ``compose_requested``) to the last melody bar,
    the last audio segment and the start of the final render (the render service's
    ``piece_completed`` is made before it renders the piece's files: what comes after it is
    the final render, with its queue), from piece.json's event log."""
    log = summary["event_log"]
    requested = [e["produced_at_unix_ns"] for e in log if e["kind"] == "compose_requested"]
    if not requested:
        return {}
    start = requested[0]
    kinds = dict(zip(STAGES, ("melody_bar", "render_segment", "piece_completed"), strict=True))
    stages = {}
    for stage, kind in kinds.items():
        times = [e["produced_at_unix_ns"] for e in log if e["kind"] == kind]
        if times:
            stages[stage] = (max(times) - start) / 1e9
    return stages


# --- trials -------------------------------------------------------------------------------------


@dataclass
class Trial:
    index: int
    victim: str
    kind: str  # "piece" or "station"
    completed: bool = False
    error: str = ""
    piece_id: str = ""
    killed_after_bars: int = 0
    killed: bool = False
    stream_cut: bool = False
    exactness: Exactness = field(default_factory=Exactness)
    restart_to_healthy_s: float | None = None
    victim_back_s: float | None = None
    exit: str = ""
    station_pieces_after: int = 0
    station_underruns: int = 0
    station_program_kept: bool = True
    station_ahead_at_kill_s: float | None = None
    """Station trials: audio the stream was ahead of playback when the service was killed
    (what a restart can take without the listener running dry)."""
    topics_recreated: list[str] = field(default_factory=list)
    waited: dict[str, int] = field(default_factory=dict)
    """Triton trials: service → retries of the piece's work while Triton was unavailable."""
    stages: dict[str, float] = field(default_factory=dict)
    """Piece trials: seconds from the request to each stage (``piece_stages``)."""
    stored_late_s: float | None = None
    """A piece whose client's deadline passed: seconds from the request to the piece being
    stored after all (it was late, not lost); None: not stored within the gateway's timeout."""
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        """completed; failed with a clear event (the server's ``failed`` event or status);
        or silent: the client heard nothing before its deadline."""
        if self.completed:
            return "completed"
        return "silent" if "DEADLINE_EXCEEDED" in self.error else "failed with an event"


def _kill(stack, victim: str) -> float:
    """SIGKILL the victim's whole process group; returns the Unix time of the kill."""
    component = stack.components()[victim]
    killed_at = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(component.pid, signal.SIGKILL)
    return killed_at


def _await_recovery(stack, victim: str, killed_at: float, timeout_s: float) -> tuple[float, str]:
    """Seconds from the kill to the supervisor's restarted process passing its health check,
    and how the supervisor saw the process end."""
    from cantus.supervisor import read_state

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(stack.settings.run_dir) or {}
        child = state.get("components", {}).get(victim, {})
        if child.get("given_up"):
            raise RuntimeError(f"the supervisor gave up on {victim}: {child.get('last_exit')}")
        for restart in child.get("history", []):
            if restart["died_at"] >= killed_at - 0.01 and restart["healthy_at"] is not None:
                return restart["healthy_at"] - killed_at, restart["exit"]
        time.sleep(0.2)
    raise RuntimeError(f"{victim} was not restarted and healthy {timeout_s:.0f} s after the kill")


def _fetch_when_stored(channel, piece_id: str, out_dir: Path, timeout_s: float) -> Path:
    """GetPiece until the piece is stored (a client whose stream was cut)."""
    from cantus.cli.compose import ComposeFailed, fetch_piece

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fetch_piece(channel, piece_id, out_dir)
        except ComposeFailed as error:
            retry = error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
            if not retry or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


TRITON_CALLERS = ("melody", "harmony", "lyric")
UNAVAILABLE_LINE = "a model server is unavailable"  # cantus.streaming.service's retry log


def unavailable_waits(log_dir: Path, piece_id: str) -> dict[str, int]:
    """Per Triton-calling service, its log's lines saying it waited for an unavailable model
    server while working on ``piece_id`` (services with none left out)."""
    waits = {}
    for name in TRITON_CALLERS:
        path = log_dir / f"{name}.log"
        if not path.exists():
            continue
        with path.open(errors="replace") as lines:
            count = sum(1 for line in lines if piece_id in line and UNAVAILABLE_LINE in line)
        if count:
            waits[name] = count
    return waits


def piece_trial(
    stack,
    trial: Trial,
    rng: random.Random,
    bars: int,
    out_dir: Path,
    timeout_s: float,
    lyrics_theme: str = "",
) -> None:
    from cantus.cli.compose import ComposeFailed, open_channel, stream_piece
    from cantus.v1 import composer_pb2 as api

    address = f"{stack.settings.host}:{stack.settings.gateway_port}"
    trial.killed_after_bars = rng.randint(1, bars - 1)
    request = api.ComposeRequest(
        bars=bars, seed=rng.randrange(1 << 30), tempo_bpm=140, lyrics_theme=lyrics_theme
    )
    if lyrics_theme:
        request.vocals = False  # the lyric model is what is in play, not the singing
    seen: dict[str, list[int]] = {"melody_bar": [], "harmony_bar": [], "render_segment": []}
    killed_at: list[float] = []
    render_output_at: list[float] = []  # arrival times of render's events at the client
    recovery: dict = {}
    piece_bars = bars  # the piece's own, a pickup bar included: its first event says

    def kill_and_watch() -> None:
        trial.killed = True  # before the kill: the client may hear of it at once
        killed_at.append(_kill(stack, trial.victim))
        if trial.victim in RESTARTED_BY_THE_BENCH:
            try:
                time.sleep(1.0)
                if trial.victim == "triton":
                    stack.start_triton()  # blocks until Triton says it is ready
                else:
                    stack.start_broker()  # blocks until it listens
                    # idempotent: names only topics the restart lost
                    trial.topics_recreated = stack.create_topics()
                recovery["s"], recovery["exit"] = time.time() - killed_at[0], "killed by bench"
            except Exception as error:
                recovery["error"] = f"{trial.victim} did not come back: {error}"
            return
        try:
            recovery["s"], recovery["exit"] = _await_recovery(
                stack, trial.victim, killed_at[0], timeout_s=120
            )
        except RuntimeError as error:
            recovery["error"] = str(error)

    watcher = threading.Thread(target=kill_and_watch, daemon=True)
    completed = False
    sent_at = time.time()
    with open_channel(address, stack.settings) as channel:
        try:
            for event in stream_piece(channel, request, timeout_s):
                kind = event.WhichOneof("event")
                if kind in ("render_segment", "completed"):
                    render_output_at.append(time.time())
                if kind == "requested":
                    trial.piece_id = event.requested.meta.piece_id
                    piece_bars = event.requested.spec.bars
                elif kind in seen:
                    seen[kind].append(getattr(event, kind).meta.index)
                elif kind == "completed":
                    completed = True
                at_kill_point = len(seen["melody_bar"]) == trial.killed_after_bars
                if kind == "melody_bar" and at_kill_point and watcher.ident is None:
                    watcher.start()
        except ComposeFailed as error:
            if trial.victim == "gateway" and trial.killed:
                trial.stream_cut = True  # the gateway died under the client
            else:
                trial.error = f"stream: {error} ({error.code})"
        if watcher.ident is None and not trial.error:
            watcher.start()  # the piece outran the kill point: kill anyway, after it
        if watcher.ident is not None:
            watcher.join(150)
        if "error" in recovery:
            trial.error = trial.error or recovery["error"]
        trial.restart_to_healthy_s = recovery.get("s")
        trial.exit = recovery.get("exit", "")
        if trial.victim == "triton" and trial.piece_id:  # also for a piece that failed
            trial.waited = unavailable_waits(stack.settings.log_dir, trial.piece_id)
        if "DEADLINE_EXCEEDED" in trial.error and trial.piece_id:
            _await_late_piece(stack, channel, trial, piece_bars, out_dir, sent_at)
        if trial.error or not trial.piece_id:
            trial.error = trial.error or "no piece id"
            return
        if trial.stream_cut:
            folder = _fetch_when_stored(channel, trial.piece_id, out_dir, timeout_s)
            completed = True
        elif completed:
            folder = _fetch_when_stored(channel, trial.piece_id, out_dir, 60)
        else:
            trial.error = "the stream ended before the piece completed"
            return
    trial.completed = completed
    segments = -(-piece_bars // stack.settings.segment_bars)
    if trial.stream_cut:  # only what came before the cut: no duplicates in it
        for kind, indices in seen.items():
            trial.exactness.check(f"client {kind}", indices, range(0))
    else:
        trial.exactness.check("client melody_bar", seen["melody_bar"], range(piece_bars))
        trial.exactness.check("client harmony_bar", seen["harmony_bar"], range(piece_bars))
        trial.exactness.check("client render_segment", seen["render_segment"], range(segments))
    check_piece_files(folder, piece_bars, trial.exactness)
    trial.stages = piece_stages(json.loads((folder / "piece.json").read_text()))
    if completed and not trial.stream_cut and render_output_at:
        trial.stages["completed at the client"] = render_output_at[-1] - sent_at
    trial.victim_back_s = _victim_back_s(trial.victim, folder, killed_at[0], render_output_at)


def _await_late_piece(
    stack, channel, trial: Trial, bars: int, out_dir: Path, sent_at: float
) -> None:
    """The client's deadline passed: wait, up to the gateway's own ``compose_timeout_s``
    from the request, for the piece to be stored after all, and check it as any piece, so
    a late piece is told from a lost one (the trial still counts as not completed)."""
    remaining = stack.settings.compose_timeout_s - (time.time() - sent_at)
    try:
        folder = _fetch_when_stored(channel, trial.piece_id, out_dir, max(remaining, 0.0))
    except Exception:  # not stored in time, or the store said no: stored_late_s stays None
        return
    trial.stored_late_s = time.time() - sent_at
    check_piece_files(folder, bars, trial.exactness)
    trial.stages = piece_stages(json.loads((folder / "piece.json").read_text()))


def _victim_back_s(
    victim: str, folder: Path, killed_at: float, render_output_at: list[float]
) -> float | None:
    """Seconds from the kill to the victim's next output for the piece: the first event it
    produced after the kill (piece.json's event log: melody, harmony, lyric), or the first
    segment or completion reaching the client (render). ``None``: the victim had no work left
    on the piece, or it is the gateway (its client's stream was cut)."""
    if victim in ("melody", "harmony", "lyric"):
        log = json.loads((folder / "piece.json").read_text())["event_log"]
        after = [
            e["produced_at_unix_ns"] / 1e9
            for e in log
            if e["producer"] == victim and e["produced_at_unix_ns"] / 1e9 > killed_at
        ]
        return min(after) - killed_at if after else None
    if victim == "render":
        after = [t for t in render_output_at if t > killed_at]
        return min(after) - killed_at if after else None
    return None


def station_trial(stack, trial: Trial, rng: random.Random, timeout_s: float) -> None:
    from cantus.v1 import station_pb2 as st
    from cantus.v1 import station_pb2_grpc as st_grpc

    address = f"{stack.settings.host}:{stack.settings.gateway_port}"
    name = f"chaos-{trial.index}"
    with grpc.insecure_channel(address) as channel:
        stub = st_grpc.StationStub(channel)

        def status() -> st.StationStatus:
            return stub.GetStation(st.StationName(name=name), timeout=30)

        def streamed(s: st.StationStatus) -> list[str]:
            return [e.piece_id for e in s.program if e.status == "streamed"]

        def wait(check: Callable[[st.StationStatus], bool], what: str) -> st.StationStatus:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    current = status()
                    if check(current):
                        return current
                except grpc.RpcError:
                    pass  # the gateway may be busy; the station service may be restarting
                time.sleep(1.0)
            raise RuntimeError(f"station {name}: {what} within {timeout_s:.0f} s")

        stub.StartStation(st.StartStationRequest(name=name, config_yaml=STATION_CONFIG), timeout=60)
        try:
            before = wait(lambda s: len(streamed(s)) >= 1, "no stream")
            time.sleep(rng.uniform(0.0, 8.0))
            before = status()
            trial.station_ahead_at_kill_s = before.ahead_seconds
            killed_at = _kill(stack, "station")
            trial.killed = True
            trial.restart_to_healthy_s, trial.exit = _await_recovery(
                stack, "station", killed_at, timeout_s=120
            )
            after = wait(
                lambda s: len(streamed(s)) >= len(streamed(before)) + 2,
                "no two more pieces after the restart",
            )
            trial.station_pieces_after = len(streamed(after)) - len(streamed(before))
            trial.station_underruns = after.underruns - before.underruns
            kept = [e.piece_id for e in after.program][: len(before.program)]
            trial.station_program_kept = kept == [e.piece_id for e in before.program]
            trial.completed = trial.station_program_kept
            if not trial.station_program_kept:
                trial.error = "the program before the kill was not kept"
        finally:
            with contextlib.suppress(grpc.RpcError):
                stub.StopStation(st.StationName(name=name), timeout=60)


# --- the campaign ------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    trials: list[Trial] = field(default_factory=list)
    bars: int = 0
    seed: int = 0
    minutes: float = 0.0
    planned: int = 0
    wall_s: float = 0.0
    load: list[float] = field(default_factory=list)  # 1-minute load average, every 5 s
    cpus: int = 0
    restarts: dict[str, int] = field(default_factory=dict)
    gave_up: list[str] = field(default_factory=list)


def run_chaos_bench(
    *,
    trials: int,
    minutes: float,
    bars: int,
    seed: int,
    victims: tuple[str, ...] = VICTIMS,
    trial_timeout_s: float = 300.0,
    lyrics_theme: str = "",
    log: Callable[[str], None] = print,
) -> ChaosReport:
    """Start a private supervised stack, run up to ``trials`` trials within ``minutes``,
    stop the stack; returns what each trial counted. ``lyrics_theme``: piece trials compose
    with lyrics on that theme (all three Triton models in play)."""
    from cantus.settings import Settings
    from cantus.stack import Stack
    from cantus.supervisor import read_state

    rng = random.Random(seed)
    report = ChaosReport(bars=bars, seed=seed, minutes=minutes, planned=trials)
    report.cpus = os.cpu_count() or 0
    stop_sampling = threading.Event()

    def sample_load() -> None:
        while not stop_sampling.is_set():
            report.load.append(os.getloadavg()[0])
            stop_sampling.wait(5.0)

    with campaign_state_dir("cantus-chaos-") as tmp:
        state_dir = Path(tmp)
        state_dir.mkdir(parents=True, exist_ok=True)
        saved = dict(os.environ)
        # CANTUS_BROKER_STORAGE=memory: the same trials on the storage that loses every topic
        # (a private stack never uses an operator's s3:// bucket)
        storage = "local-s3" if "broker" in victims else "memory"
        if os.environ.get("CANTUS_BROKER_STORAGE") in ("memory", "local-s3"):
            storage = os.environ["CANTUS_BROKER_STORAGE"]
        os.environ.update(campaign_environment(state_dir, broker_storage=storage))
        stack = Stack(Settings(), owner=os.getpid())  # a campaign killed -9 is reaped later
        try:
            log("starting a private stack with its supervisor…")
            stack.up(supervise=True)
            sampler = threading.Thread(target=sample_load, daemon=True)
            sampler.start()
            started = time.monotonic()
            for index in range(trials):
                if time.monotonic() - started > minutes * 60:
                    log(f"time is up after {index} trials")
                    break
                victim = rng.choice(victims)
                kind = "station" if victim == "station" else "piece"
                trial = Trial(index=index, victim=victim, kind=kind)
                begun = time.monotonic()
                try:
                    if kind == "station":
                        station_trial(stack, trial, rng, trial_timeout_s)
                    else:
                        piece_trial(
                            stack,
                            trial,
                            rng,
                            bars,
                            state_dir / "out",
                            # a restarted Triton may take minutes to load its models on a
                            # loaded machine: its trials wait as long as the gateway does
                            stack.settings.compose_timeout_s
                            if victim == "triton"
                            else trial_timeout_s,
                            lyrics_theme=lyrics_theme,
                        )
                except Exception as error:  # counted, and the campaign goes on
                    trial.error = trial.error or f"{type(error).__name__}: {error}"
                trial.seconds = time.monotonic() - begun
                report.trials.append(trial)
                log(_trial_line(trial))
                _settle(stack, victim)
            report.wall_s = time.monotonic() - started
            state = read_state(stack.settings.run_dir) or {}
            for name, child in state.get("components", {}).items():
                report.restarts[name] = child["restarts"]
                if child["given_up"]:
                    report.gave_up.append(name)
        finally:
            stop_sampling.set()
            stack.down()
            os.environ.clear()
            os.environ.update(saved)
    return report


def _settle(stack, victim: str, timeout_s: float = 120.0) -> None:
    """Wait until the victim serves again, so one trial's restart never spills into the next
    (after a broker restart: every service and the gateway, which reconnect to it)."""
    if victim == "triton":
        return  # the trial waited for it to be ready
    names = [*STREAM_SERVICES, "gateway"] if victim == "broker" else [victim]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(stack.healthy(name) for name in names):
        time.sleep(0.5)


def _trial_line(trial: Trial) -> str:
    state = "completed" if trial.completed else f"FAILED ({trial.error})"
    recovery = (
        f"healthy {trial.restart_to_healthy_s:.1f} s after the kill"
        if trial.restart_to_healthy_s is not None
        else "no recovery time"
    )
    where = f"after {trial.killed_after_bars} bars" if trial.kind == "piece" else "mid-stream"
    exact = trial.exactness
    line = (
        f"trial {trial.index:>2}: kill -9 {trial.victim:<8} {where}: {state}; {recovery}; "
        f"duplicates {exact.duplicate_count}, gaps {exact.gap_count}"
    )
    if exact.duplicate_count or exact.gap_count:
        line += f" (duplicated: {exact.duplicates}; missing: {exact.gaps})"
    if trial.victim_back_s is not None:
        line += f"; its next output {trial.victim_back_s:.1f} s after the kill"
    if trial.stream_cut:
        line += "; stream cut, piece fetched by GetPiece"
    if "DEADLINE_EXCEEDED" in trial.error and trial.kind == "piece":
        line += (
            f"; stored late, {trial.stored_late_s:.0f} s after the request"
            if trial.stored_late_s is not None
            else "; not stored within the gateway's compose timeout"
        )
    if trial.stages:
        line += "; from the request: " + ", ".join(
            f"{stage} {seconds:.0f} s" for stage, seconds in trial.stages.items()
        )
    if trial.victim == "triton":
        waited = ", ".join(f"{k} {v}" for k, v in sorted(trial.waited.items())) or "none"
        line += f"; retries while Triton was unavailable: {waited}"
    if trial.topics_recreated:
        line += f"; topics lost by the restart: {', '.join(trial.topics_recreated)}"
    if trial.kind == "station":
        line += (
            f"; {trial.station_pieces_after} pieces streamed after the kill, "
            f"{trial.station_underruns} underruns"
        )
        if trial.station_ahead_at_kill_s is not None:
            line += f" (the stream was {trial.station_ahead_at_kill_s:.1f} s ahead at the kill)"
    return line


def _summary(values: list[float]) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.1f} / {p95:.1f} / {ordered[-1]:.1f}"


def format_report(report: ChaosReport, *, command: str) -> str:
    trials = report.trials
    done = sum(t.completed for t in trials)
    duplicates = sum(t.exactness.duplicate_count for t in trials)
    gaps = sum(t.exactness.gap_count for t in trials)
    pieces = [t for t in trials if t.kind == "piece"]
    stations = [t for t in trials if t.kind == "station"]
    lines = [
        "# Reliability: kill -9 campaign (#22)",
        "",
        f"Made by `{command}` ({len(trials)} of {report.planned} planned trials, "
        f"{report.wall_s / 60:.1f} min, seed {report.seed}, {report.bars}-bar pieces).",
        "",
        "Each trial kills one component's process group with SIGKILL at a random point; "
        "`cantus up`'s supervisor (cantus.supervisor) restarts it with back-off. See "
        "`cantus.bench.chaos` for what each trial checks.",
        "",
        *(
            [
                f"{len(trials)} trials ran: the bench starts no trial after `--minutes`. "
                f"The campaign of {report.planned} is the same command with a longer "
                "`--minutes`.",
                "",
            ]
            if len(trials) < report.planned
            else []
        ),
        "## Totals",
        "",
        "| | |",
        "|---|---|",
        f"| trials | {len(trials)} ({len(pieces)} piece, {len(stations)} station) |",
        f"| completed | {done} of {len(trials)} ({100 * done / max(len(trials), 1):.0f} %) |",
        "| not completed: failed with a clear event / silent (client deadline) | "
        f"{sum(t.outcome == 'failed with an event' for t in trials)} / "
        f"{sum(t.outcome == 'silent' for t in trials)} |",
        "| of those silent: stored late / not stored within the gateway's timeout | "
        f"{sum(t.outcome == 'silent' and t.stored_late_s is not None for t in trials)} / "
        f"{sum(t.outcome == 'silent' and t.stored_late_s is None for t in trials)} |",
        *(
            f"| request → {stage}, s (median / p95 / max) | "
            f"{_summary([t.stages[stage] for t in pieces if stage in t.stages])} |"
            for stage in (*STAGES, "completed at the client")
        ),
        f"| topics lost by a broker restart | {sum(len(t.topics_recreated) for t in trials)} |",
        f"| duplicated bars / segments / lines (client, piece.json, piece.mid) | {duplicates} |",
        f"| missing bars / segments / lines (client, piece.json, piece.mid) | {gaps} |",
        f"| client streams cut by a gateway kill (piece then fetched by GetPiece) | "
        f"{sum(t.stream_cut for t in trials)} |",
        f"| station audio gaps (underruns during station trials) | "
        f"{sum(t.station_underruns for t in stations)} |",
        "| kill → restarted process healthy, s (median / p95 / max) | "
        f"{_summary([t.restart_to_healthy_s for t in trials if t.restart_to_healthy_s])} |",
        "| kill → the victim's next output for the piece, s (median / p95 / max) | "
        f"{_summary([t.victim_back_s for t in pieces if t.victim_back_s is not None])} |",
        "| piece trials whose victim had no work left on the piece when killed | "
        f"{sum(t.victim_back_s is None for t in pieces if t.victim in STREAM_SERVICES)} |",
        f"| restarts counted by the supervisor | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(report.restarts.items()))} |",
        f"| components given up on | {', '.join(report.gave_up) or 'none'} |",
        *(
            [
                "| Triton trials in which each service waited for Triton (retries in all) | "
                + ", ".join(
                    f"{name} {sum(name in t.waited for t in triton)} "
                    f"({sum(t.waited.get(name, 0) for t in triton)})"
                    for name in TRITON_CALLERS
                )
                + " |"
            ]
            if (triton := [t for t in trials if t.victim == "triton"])
            else []
        ),
        "",
        "## By victim",
        "",
        "| victim | trials | completed | duplicates | gaps | healthy after (s, median) |",
        "|---|---|---|---|---|---|",
    ]
    for victim in VICTIMS + EXTRA_VICTIMS:
        mine = [t for t in trials if t.victim == victim]
        if not mine:
            continue
        healthy = [t.restart_to_healthy_s for t in mine if t.restart_to_healthy_s is not None]
        lines.append(
            f"| {victim} | {len(mine)} | {sum(t.completed for t in mine)} | "
            f"{sum(t.exactness.duplicate_count for t in mine)} | "
            f"{sum(t.exactness.gap_count for t in mine)} | "
            f"{statistics.median(healthy) if healthy else float('nan'):.1f} |"
        )
    if report.load:
        lines += [
            "",
            "## Machine load during the run",
            "",
            f"1-minute load average every 5 s on {report.cpus} cores: min "
            f"{min(report.load):.1f}, median {statistics.median(report.load):.1f}, max "
            f"{max(report.load):.1f}.",
        ]
    lines += ["", "## Trials", ""]
    lines += [f"* {_trial_line(t)}" for t in trials]
    return "\n".join(lines) + "\n"
