"""``cantus bench chaos --scenario clients,hostile`` (#22): misbehaving clients, many clients
at once and hostile input against a private stack (the kill -9 campaign's, cantus.bench.chaos).

Clients:

* **disconnect**: a client cancels its Compose stream after the first melody bar; the piece
  must still complete and be stored (fetched with GetPieceFiles, piece.json and piece.mid
  checked bar by bar as in the kill campaign).
* **slow reader**: one client reads its stream one event every ``slow_read_s`` while another
  composes at full speed; the other's time to complete is compared with a piece composed alone,
  and the gateway's resident memory is read before and after.
* **large piece**: a piece of ``large_mb`` MiB (far over the 64 MB a usual gRPC client takes)
  is stored and fetched with GetPieceFiles, compared byte for byte; GetPiece on it must fail
  with RESOURCE_EXHAUSTED naming GetPieceFiles.
* **burst**: ``burst`` Compose calls at once; those past the gateway's in-flight limit must be
  refused at once with RESOURCE_EXHAUSTED and a retry hint; every admitted piece must complete
  and be stored whole.

Hostile: ``cantus.bench.hostile``'s cases through the stack's gateway (gRPC, HTTP) and as raw
records on its broker, each poison record looked for in the dead-letter topic.

The sections are written into ``--out`` in place (a section of the same heading is replaced,
the rest of the file kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cantus.bench.hostile import HostileReport

SCENARIOS = ("clients", "hostile", "burst", "large")
"""``clients`` runs the four client steps; ``burst`` and ``large`` run only that step (a lean
re-measure), written under their own heading ("## Clients: burst")."""
PARTS = {"burst": "burst", "large": "large piece"}


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class ClientsReport:
    heading: str = "## Clients"
    lines: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    load: list[float] = field(default_factory=list)


def _compose_events(channel, request, timeout_s: float, on_event=None):
    from cantus.v1 import composer_pb2_grpc as api_grpc

    call = api_grpc.ComposerStub(channel).Compose(request, timeout=timeout_s)
    piece_id, completed = "", False
    kinds: Counter[str] = Counter()
    for event in call:
        kind = event.WhichOneof("event")
        kinds[kind] += 1
        if kind == "requested":
            piece_id = event.requested.meta.piece_id
        if on_event is not None and on_event(kind, call) is False:
            return piece_id, False, kinds
        if kind == "completed":
            completed = True
        if kind == "failed":
            break
    return piece_id, completed, kinds


def _fetch_and_check(channel, piece_id: str, out_dir: Path, timeout_s: float):
    """The stored piece, fetched when it is there; its exactness (cantus.bench.chaos)
    against its own bars (its spec's: a piece that opens with a pickup bar is a bar longer
    than asked)."""
    from cantus.bench.chaos import Exactness, _fetch_when_stored, check_piece_files

    folder = _fetch_when_stored(channel, piece_id, out_dir, timeout_s)
    exactness = Exactness()
    bars = int(json.loads((folder / "piece.json").read_text())["bars"])
    check_piece_files(folder, bars, exactness)
    return exactness


def disconnect(stack, channel, out_dir: Path, report: ClientsReport, bars: int, seed: int) -> None:
    from cantus.v1 import composer_pb2 as api

    request = api.ComposeRequest(bars=bars, seed=seed, tempo_bpm=140)
    started = time.monotonic()

    def after_first_bar(kind: str, call) -> bool:
        if kind == "melody_bar":
            call.cancel()
            return False
        return True

    piece_id, _, kinds = _compose_events(channel, request, 600, after_first_bar)
    cut_at = time.monotonic() - started
    exactness = _fetch_and_check(channel, piece_id, out_dir, 600)
    stored_at = time.monotonic() - started
    ok = exactness.duplicate_count == 0 and exactness.gap_count == 0
    if not ok:
        report.failures.append(f"disconnect: piece {piece_id} stored with {exactness}")
    report.lines["disconnect"] = [
        f"cancelled after {sum(kinds.values())} events ({cut_at:.1f} s); the piece was "
        f"stored and fetched {stored_at:.1f} s after the request; piece.json and piece.mid: "
        f"{exactness.duplicate_count} duplicated, {exactness.gap_count} missing bars"
    ]


def slow_reader(
    stack, channel, out_dir: Path, report: ClientsReport, bars: int, slow_read_s: float, seed: int
) -> None:
    from cantus.v1 import composer_pb2 as api

    gateway_pid = stack.components()["gateway"].pid
    alone_started = time.monotonic()
    _, alone_ok, _ = _compose_events(
        channel, api.ComposeRequest(bars=bars, seed=seed, tempo_bpm=140), 600
    )
    alone_s = time.monotonic() - alone_started
    rss_before = rss_mb(gateway_pid)
    slow_result: dict = {}

    def slow() -> None:
        def crawl(kind: str, call) -> bool:
            time.sleep(slow_read_s)
            return True

        started = time.monotonic()
        slow_result["piece"] = _compose_events(
            channel, api.ComposeRequest(bars=bars, seed=seed + 1, tempo_bpm=140), 900, crawl
        )
        slow_result["s"] = time.monotonic() - started

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    time.sleep(1.0)
    fast_started = time.monotonic()
    _, fast_ok, _ = _compose_events(
        channel, api.ComposeRequest(bars=bars, seed=seed + 2, tempo_bpm=140), 600
    )
    fast_s = time.monotonic() - fast_started
    rss_during = rss_mb(gateway_pid)
    thread.join(900)
    rss_after = rss_mb(gateway_pid)
    _, slow_ok, slow_kinds = slow_result.get("piece", ("", False, Counter()))
    if not (alone_ok and fast_ok and slow_ok):
        report.failures.append(
            f"slow reader: alone {alone_ok}, beside the slow one {fast_ok}, slow {slow_ok}"
        )
    report.lines["slow reader"] = [
        f"a piece alone: {alone_s:.1f} s; beside a client reading one event every "
        f"{slow_read_s:g} s: {fast_s:.1f} s (completed: {fast_ok})",
        f"the slow client read {sum(slow_kinds.values())} events in "
        f"{slow_result.get('s', 0):.1f} s "
        f"and its piece completed: {slow_ok}",
        f"gateway RSS: {rss_before:.0f} MiB before, {rss_during:.0f} MiB during, "
        f"{rss_after:.0f} MiB after",
    ]


def large_piece(stack, channel, out_dir: Path, report: ClientsReport, large_mb: int) -> None:
    from cantus.cli.compose import ComposeFailed, download_piece
    from cantus.storage import piece_store
    from cantus.v1 import composer_pb2 as api
    from cantus.v1 import composer_pb2_grpc as api_grpc
    from services.gateway.server import PIECE_MESSAGE_MAX_BYTES

    piece_id = os.urandom(16).hex()
    store = piece_store(stack.settings)
    rng = random.Random(large_mb)
    block = rng.randbytes(1 << 20)
    content = b"".join(
        block[i:] + block[:i] for i in range(large_mb)
    )  # large_mb MiB, not one repeated block
    store.write(piece_id, "piece.wav", content)
    store.write(piece_id, "piece.json", b'{"bars": 0}')
    digest = hashlib.sha256(content).hexdigest()
    del content
    gateway_pid = stack.components()["gateway"].pid
    rss_before = rss_mb(gateway_pid)
    peak = [rss_before]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak.append(rss_mb(gateway_pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    fetched = download_piece(channel, piece_id)
    fetch_s = time.monotonic() - started
    done.set()
    watcher.join()
    same = hashlib.sha256(fetched.files["piece.wav"]).hexdigest() == digest
    del fetched
    try:
        api_grpc.ComposerStub(channel).GetPiece(api.GetPieceRequest(piece_id=piece_id), timeout=300)
        old = "GetPiece answered (the piece is under its one-message limit)"
        if large_mb * 2**20 > PIECE_MESSAGE_MAX_BYTES:
            report.failures.append("large piece: GetPiece did not refuse it")
    except grpc.RpcError as error:
        old = f"GetPiece: {error.code().name}, {error.details()!r}"
        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or "GetPieceFiles" not in (
            error.details() or ""
        ):
            report.failures.append(f"large piece: {old}")
    except ComposeFailed as error:
        old = str(error)
    if not same:
        report.failures.append("large piece: the joined file differs")
    report.lines["large piece"] = [
        f"{large_mb} MiB piece.wav fetched with GetPieceFiles in {fetch_s:.1f} s "
        f"({large_mb / max(fetch_s, 1e-9):.0f} MiB/s), identical (SHA-256): {same}",
        f"gateway RSS {rss_before:.0f} MiB before, peak {max(peak):.0f} MiB during the fetch",
        old,
    ]


def burst(
    stack, address: str, out_dir: Path, report: ClientsReport, calls: int, bars: int, seed: int
) -> None:
    from cantus.cli.compose import open_channel
    from cantus.requests import RETRY_AFTER_METADATA
    from cantus.v1 import composer_pb2 as api

    barrier = threading.Barrier(calls)
    results: list[dict] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        result: dict = {"index": index}
        with open_channel(address, stack.settings) as channel:
            request = api.ComposeRequest(bars=bars, seed=seed + index, tempo_bpm=140)
            barrier.wait(60)
            started = time.monotonic()
            try:
                piece_id, completed, kinds = _compose_events(channel, request, 1800)
                result.update(piece_id=piece_id, completed=completed, admitted=True, kinds=kinds)
            except grpc.RpcError as error:
                result["code"] = error.code().name
                result["details"] = error.details() or ""
                result["admitted"] = error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
                hint = [v for k, v in error.trailing_metadata() or () if k == RETRY_AFTER_METADATA]
                result["retry_after"] = hint[0] if hint else None
            result["s"] = time.monotonic() - started
        with lock:
            results.append(result)

    with ThreadPoolExecutor(max_workers=calls) as pool:
        list(pool.map(one, range(calls)))
    refused = [r for r in results if not r["admitted"]]
    admitted = [r for r in results if r["admitted"]]
    completed = [r for r in admitted if r.get("completed")]
    hinted = [r for r in refused if r.get("retry_after")]
    refused_s = [r["s"] for r in refused]
    checked = duplicates = gaps = 0
    with open_channel(address, stack.settings) as channel:
        for r in completed:
            exactness = _fetch_and_check(channel, r["piece_id"], out_dir, 120)
            checked += 1
            duplicates += exactness.duplicate_count
            gaps += exactness.gap_count
    other = Counter(r.get("code", "OK") for r in admitted if not r.get("completed"))
    if len(completed) != len(admitted) or len(hinted) != len(refused) or duplicates or gaps:
        report.failures.append(
            f"burst: admitted {len(admitted)}, completed {len(completed)}, "
            f"hinted {len(hinted)} of {len(refused)} refused"
        )
    done_s = sorted(r["s"] for r in completed)
    report.lines["burst"] = [
        f"{calls} Compose calls of {bars} bars at once against gateway_max_pieces_in_flight = "
        f"{stack.settings.gateway_max_pieces_in_flight}",
        f"admitted {len(admitted)}, refused {len(refused)} with RESOURCE_EXHAUSTED "
        f"({len(hinted)} with a retry hint, "
        f"{', '.join(sorted({str(r.get('retry_after')) for r in hinted}))} s), "
        f"refusal answered in {max(refused_s, default=0):.2f} s at most",
        f"completed {len(completed)} of {len(admitted)} admitted"
        + (f" (others: {dict(other)})" if other else "")
        + (
            f"; time to complete median {statistics.median(done_s):.0f} s, max {done_s[-1]:.0f} s"
            if done_s
            else ""
        ),
        f"stored pieces checked (piece.json, piece.mid): {checked}, {duplicates} duplicated "
        f"and {gaps} missing bars",
    ]


# --- hostile records through the broker ----------------------------------------------------------


def send_kafka_cases(settings, cases, wait_s: float = 120.0):
    """Publish each case's raw record to its topic and look for a dead letter naming the
    record's topic and offset; an outcome per case."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from cantus.bench.hostile import Outcome
    from cantus.events.codec import decode_event
    from cantus.security import kafka_client_options

    async def run() -> list[Outcome]:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.broker, **kafka_client_options(settings)
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.broker,
            enable_auto_commit=False,
            **kafka_client_options(settings),
        )
        await producer.start()
        await consumer.start()
        try:
            dead = settings.topics.dead_letter
            partitions = [
                TopicPartition(dead, p) for p in sorted(consumer.partitions_for_topic(dead) or {0})
            ]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)
            sent: dict[tuple[str, int, int], Outcome] = {}
            for case in cases:
                value, headers = case.payload
                topic = getattr(settings.topics, case.target)
                meta = await producer.send_and_wait(
                    topic, value, key=b"hostile", headers=list(headers)
                )
                sent[(topic, meta.partition, meta.offset)] = Outcome(case, status="sent")
            deadline = time.monotonic() + wait_s
            waiting = set(sent)
            while waiting and time.monotonic() < deadline:
                batch = await consumer.getmany(*partitions, timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        try:
                            letter = decode_event("dead_letter", record.value, record.headers)
                        except Exception:
                            continue
                        key = (letter.source_topic, letter.source_partition, letter.source_offset)
                        if key in sent:
                            outcome = sent[key]
                            if not outcome.rejected:
                                outcome.rejected = outcome.names_field = True
                                outcome.status = f"dead-lettered by {letter.service}"
                                outcome.detail = letter.reason[:200]
                            waiting.discard(key)
            for key in waiting:
                sent[key].status = "not dead-lettered"
                sent[key].detail = f"no letter within {wait_s:.0f} s"
            return list(sent.values())
        finally:
            await consumer.stop()
            await producer.stop()

    return asyncio.run(run())


# --- running and writing ----------------------------------------------------------------


def replace_section(path: Path, text: str) -> None:
    """Put ``text`` (a "## Heading" section) into ``path``: over the section of the same
    heading if there is one, else at the end."""
    heading = text.splitlines()[0]
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda m: text.rstrip("\n") + "\n\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")


def format_clients(report: ClientsReport, *, command: str) -> str:
    lines = [
        report.heading,
        "",
        f"Made by `{command}` ({report.wall_s / 60:.1f} min, on the private stack with its "
        "supervisor, loopback only).",
        "",
    ]
    for name, items in report.lines.items():
        lines.append(f"* **{name}**: " + "; ".join(items) + ".")
    if report.load:
        lines += [
            "",
            f"1-minute load average during the run on {os.cpu_count()} cores: median "
            f"{statistics.median(report.load):.1f}, max {max(report.load):.1f}.",
        ]
    lines += [
        "",
        f"Failures: {len(report.failures)}"
        + ("" if not report.failures else ": " + "; ".join(report.failures))
        + ".",
    ]
    return "\n".join(lines) + "\n"


def run_scenarios(
    scenarios: tuple[str, ...],
    *,
    seed: int,
    bars: int = 4,
    burst_calls: int = 200,
    large_mb: int = 300,
    slow_read_s: float = 2.0,
    hostile_cases: int = 10_000,
    max_in_flight: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[ClientsReport | None, HostileReport | None]:
    """Start a private stack, run the scenarios, stop it. ``max_in_flight``: the gateway's
    in-flight limit (default: the settings'), so a small burst can pass it."""
    from cantus.bench.chaos import campaign_environment, campaign_state_dir
    from cantus.bench.hostile import generate, run_cases
    from cantus.cli.compose import open_channel
    from cantus.settings import Settings
    from cantus.stack import Stack

    clients: ClientsReport | None = None
    hostile: HostileReport | None = None
    stop_sampling = threading.Event()
    load: list[float] = []

    def sample_load() -> None:
        while not stop_sampling.is_set():
            load.append(os.getloadavg()[0])
            stop_sampling.wait(5.0)

    with campaign_state_dir("cantus-clients-") as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        saved = dict(os.environ)
        os.environ.update(campaign_environment(Path(tmp)))
        if max_in_flight is not None:
            os.environ["CANTUS_GATEWAY_MAX_PIECES_IN_FLIGHT"] = str(max_in_flight)
        stack = Stack(Settings())
        try:
            log("starting a private stack with its supervisor…")
            stack.up(supervise=True)
            threading.Thread(target=sample_load, daemon=True).start()
            settings = stack.settings
            address = f"{settings.host}:{settings.gateway_port}"
            out_dir = Path(tmp) / "out"
            if "hostile" in scenarios:
                log(f"hostile: {hostile_cases} cases…")
                from cantus.bench.hostile import KNOWN_PIECE, KNOWN_STATION

                _known_station_and_piece(settings, KNOWN_STATION, KNOWN_PIECE)
                cases = generate(hostile_cases, seed, max_bars=settings.max_bars)
                started = time.monotonic()
                outcomes = run_cases(
                    cases,
                    grpc_address=address,
                    http_port=settings.gateway_http_port,
                    kafka=lambda kafka_cases: send_kafka_cases(settings, kafka_cases),
                    healthy=lambda: stack.healthy("gateway"),
                    log=log,
                )
                hostile = HostileReport(
                    seed,
                    outcomes,
                    time.monotonic() - started,
                    "through the private stack's gateway and broker",
                )
                restarts = _restarts(settings)
                hostile.where += "; supervisor restarts during the run: " + (
                    "; ".join(f"{name} {summary}" for name, summary in restarts.items()) or "none"
                )
            parts = [PARTS[s] for s in scenarios if s in PARTS]
            if "clients" in scenarios or parts:
                clients = ClientsReport()
                if "clients" not in scenarios:
                    clients.heading = "## Clients: " + ", ".join(parts)
                started = time.monotonic()
                with open_channel(address, settings) as channel:
                    for name, step in (
                        (
                            "disconnect",
                            lambda: disconnect(stack, channel, out_dir, clients, bars, seed),
                        ),
                        (
                            "slow reader",
                            lambda: slow_reader(
                                stack, channel, out_dir, clients, bars, slow_read_s, seed + 10
                            ),
                        ),
                        (
                            "large piece",
                            lambda: large_piece(stack, channel, out_dir, clients, large_mb),
                        ),
                        (
                            "burst",
                            lambda: burst(
                                stack, address, out_dir, clients, burst_calls, bars, seed + 100
                            ),
                        ),
                    ):
                        if "clients" not in scenarios and name not in parts:
                            continue
                        log(f"clients: {name}…")
                        try:
                            step()
                        except Exception as error:  # counted, and the next goes on
                            clients.failures.append(f"{name}: {type(error).__name__}: {error}")
                        log(f"clients: {name}: {clients.lines.get(name)}")
                clients.wall_s = time.monotonic() - started
                clients.load = list(load)
        finally:
            stop_sampling.set()
            with contextlib.suppress(Exception):
                stack.down()
            os.environ.clear()
            os.environ.update(saved)
    return clients, hostile


def _restarts(settings) -> dict[str, str]:
    """Each restarted component: how many times, and how its process ended each time
    (``render: 2 (exit code 1 ×1, killed by SIGKILL (signal 9) ×1)``), from the supervisor's
    state; the component's log under the state folder says why."""
    from cantus.supervisor import read_state

    state = read_state(settings.run_dir) or {}
    return {
        name: restart_summary(child)
        for name, child in state.get("components", {}).items()
        if child.get("restarts")
    }


def restart_summary(child: dict) -> str:
    """``N (how it ended ×count, …)`` for one component of the supervisor's state."""
    ends = Counter(entry.get("exit", "?") for entry in child.get("history", []))
    how = ", ".join(f"{end} ×{count}" for end, count in ends.most_common())
    return f"{child['restarts']} ({how})" if how else str(child["restarts"])


def _known_station_and_piece(settings, station: str, piece_id: str) -> None:
    """A stopped station with one piece in its program on the state topic (what the gateway
    knows stations from) and that piece in the store, so hostile feedback and file names
    are checked past the station's and the piece's existence."""
    from aiokafka import AIOKafkaProducer

    from cantus.security import kafka_client_options
    from cantus.stations.records import encode_station_record
    from cantus.storage import piece_store
    from cantus.v1 import station_pb2 as st

    piece_store(settings).write(piece_id, "piece.json", b"{}")
    status = st.StationStatus(
        name=station,
        config_yaml="styles: {folk: 1}\n",
        running=False,
        updated_unix_ns=time.time_ns(),
        program=[st.ProgramEntry(piece_id=piece_id, position=0, status="played")],
    )
    key, value, headers = encode_station_record("station_state", status, station, source="bench")

    async def publish() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.broker, **kafka_client_options(settings)
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                settings.topics.station_state, value, key=key, headers=headers
            )
        finally:
            await producer.stop()

    asyncio.run(publish())
    time.sleep(2.0)  # the gateway's directory reads it


def run_scenarios_cli(
    scenario: str,
    *,
    seed: int,
    bars: int,
    cases: int,
    burst: int,
    out: Path | None,
    command: str,
    log: Callable[[str], None],
) -> bool:
    """``cantus bench chaos --scenario …``: run, print and write the sections; True when
    something failed (a client check, a crash, an accepted or unnamed rejection)."""
    from cantus.bench.hostile import format_section

    chosen = tuple(s.strip() for s in scenario.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SCENARIOS]
    if not chosen or unknown:
        raise ValueError(f"--scenario: kill, or comma-separated {', '.join(SCENARIOS)}")
    clients, hostile = run_scenarios(
        chosen, seed=seed, bars=bars, burst_calls=burst, hostile_cases=cases, log=log
    )
    sections = []
    if clients is not None:
        sections.append(format_clients(clients, command=command))
    if hostile is not None:
        sections.append(format_section(hostile, command=command))
    for text in sections:
        print(text)
        if out is not None:
            replace_section(out, text)
    return bool(
        (clients is not None and clients.failures) or (hostile is not None and hostile.defects)
    )
