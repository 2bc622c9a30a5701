"""The gateway's side of stations: the ``Station`` gRPC service, and the directory of every
station's last snapshot and stream segments that the gRPC calls and the HTTP side read.

The directory reads ``cantus.station.state``, ``cantus.station.segment`` and
``cantus.station.outcome`` (sessions' outcome logs) from the start with no consumer group,
so any gateway replica, restarted or not, serves every station.
It keeps each station's segments of the last ``Settings.station_segment_retention_s``, the
same setting as the segment topic's retention, so that a replica that has run for days and
one that has just read the topic back list the same segments. It keeps their records only;
the bytes are read from the segment store when a player asks
(``cantus.segment_store``).
Commands and feedback go to Kafka for the station service; a call waits (briefly) until
the station's next snapshot shows their effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NoReturn

import grpc
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cantus.events.codec import InvalidEvent
from cantus.kafka_clients import unmanaged_consumer
from cantus.settings import Settings
from cantus.stations.config import (
    StationConfigError,
    check_station_name,
    load_yaml_text,
    parse_station_config,
)
from cantus.stations.feeds import SegmentEntry
from cantus.stations.outcomes import StationOutcomes
from cantus.stations.plans import PlanError, State, plan_session
from cantus.stations.records import (
    decode_station_record,
    encode_station_record,
    merge_fingerprints,
)
from cantus.stations.sessions import (
    ControlMode,
    reference_plan,
    session_config,
    session_config_to_yaml,
)
from cantus.stations.signals import SignalError, check_signal, new_session_state
from cantus.v1 import station_pb2 as st
from cantus.v1 import station_pb2_grpc as st_grpc

log = logging.getLogger("cantus.gateway.stations")

WAIT_FOR_STATION_S = 15.0


@dataclass
class StationStream:
    status: st.StationStatus | None = None
    """The latest snapshot (without fingerprints: ``with_fingerprints`` adds them)."""
    fingerprints: st.StationStatus | None = None
    """The station's latest fingerprints record (``StationStatus.fingerprints_only``)."""
    segments: OrderedDict[int, st.StationSegment] | None = None
    changed: asyncio.Event | None = None
    published_ms: dict[int, int] = field(default_factory=dict)
    """sequence → Kafka timestamp of its record (what the topic's retention goes by)."""
    seconds: float = 0.0
    """Audio in ``segments``, seconds."""
    newest_ms: int = 0
    """The latest of ``published_ms``."""
    outcomes: StationOutcomes = field(default_factory=StationOutcomes)
    """The station's sessions' outcome logs, per session id, bounded."""
    discontinuity_sequence: int = 0
    """Discontinuity tags that left the playlist's head (HLS ``EXT-X-DISCONTINUITY-SEQUENCE``,
    by which players line up discontinuities across reloads). A segment's tag goes when it
    becomes the window's first segment, since no tag precedes the first."""

    def with_fingerprints(self) -> st.StationStatus | None:
        """The snapshot as the Station service answers it: with the fingerprints."""
        if self.status is None:
            return None
        return merge_fingerprints(self.status, self.fingerprints)

    def entries(self) -> list[SegmentEntry]:
        return [
            SegmentEntry(s.sequence, s.duration_seconds, s.discontinuity)
            for s in (self.segments or {}).values()
        ]

    def add_segment(self, segment: st.StationSegment, published_ms: int, window_s: float) -> None:
        """Keep ``segment``; drop the oldest ones published more than ``window_s`` before the
        newest (the topic's own rule) or beyond ``window_s`` of audio (a bound on memory even
        when records' timestamps bunch up), so the playlist slides past them."""
        assert self.segments is not None
        if segment.sequence in self.segments:
            self.seconds -= self.segments[segment.sequence].duration_seconds
        self.segments[segment.sequence] = segment
        self.published_ms[segment.sequence] = published_ms
        self.seconds += segment.duration_seconds
        self.newest_ms = max(self.newest_ms, published_ms)
        oldest_kept_ms = self.newest_ms - window_s * 1000
        while len(self.segments) > 1:
            sequence, oldest = next(iter(self.segments.items()))
            if self.seconds <= window_s and self.published_ms[sequence] >= oldest_kept_ms:
                break
            del self.segments[sequence]
            del self.published_ms[sequence]
            self.seconds -= oldest.duration_seconds
            self.discontinuity_sequence += next(iter(self.segments.values())).discontinuity


async def _abort(context, code: grpc.StatusCode, details: str) -> NoReturn:
    """``context.abort``, which ends the call by raising (grpc has no type hints here, so
    mypy cannot know that it never returns)."""
    await context.abort(code, details)
    raise AssertionError("context.abort returned")


class StationDirectory:
    """Every station's last snapshot and its segments, kept current from Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stations: dict[str, StationStream] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def stream(self, name: str) -> StationStream:
        if name not in self.stations:
            self.stations[name] = StationStream(segments=OrderedDict(), changed=asyncio.Event())
        return self.stations[name]

    async def start(self) -> None:
        topics = [
            self.settings.topics.station_state,
            self.settings.topics.station_segment,
            self.settings.topics.station_outcome,
        ]
        self._consumer = unmanaged_consumer(
            self.settings,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self._consumer.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run(), name="station-directory")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        # The directory must outlive a broker hiccup: a failure is logged and reading resumes,
        # rather than the task ending and the gateway serving a frozen view.
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("station directory: reading the station topics failed; retrying")
                await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            self.on_record(record.topic, record.value, record.headers, record.timestamp)

    def on_record(self, topic: str, value: bytes | None, headers, timestamp_ms: int) -> None:
        """Take in one record of the state or segment topic."""
        topics = self.settings.topics
        kind = {
            topics.station_state: "station_state",
            topics.station_outcome: "station_outcome",
        }.get(topic, "station_segment")
        try:
            message = decode_station_record(kind, value, headers)
        except InvalidEvent as error:
            log.warning("skipping a bad %s record: %s", kind, error)
            return
        if kind == "station_outcome":
            stream = self.stream(message.station)
            stream.outcomes.add(message)
        elif kind == "station_state":
            stream = self.stream(message.name)
            if message.fingerprints_only:
                stream.fingerprints = message
            else:
                stream.status = message
        else:
            stream = self.stream(message.station)
            stream.add_segment(
                message,
                timestamp_ms,
                self.settings.station_segment_retention_s,
            )
        assert stream.changed is not None
        stream.changed.set()
        stream.changed = asyncio.Event()

    async def wait_for(self, name: str, check, timeout_s: float) -> st.StationStatus | None:
        """The station's snapshot once ``check(status)`` holds, or the last one on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            stream = self.stream(name)
            if stream.status is not None and check(stream.status):
                return stream.with_fingerprints()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return stream.with_fingerprints()
            assert stream.changed is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.changed.wait(), timeout=remaining)


class StationApi(st_grpc.StationServicer):
    def __init__(
        self, settings: Settings, producer: AIOKafkaProducer, directory: StationDirectory
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.directory = directory

    async def _send(self, kind: str, message, station: str) -> None:
        key, value, headers = encode_station_record(kind, message, station, source="gateway")
        await self.producer.send_and_wait(
            getattr(self.settings.topics, kind), value, key=key, headers=headers
        )

    async def StartStation(self, request: st.StartStationRequest, context):
        try:
            check_station_name(request.name)
            parse_station_config(request.config_yaml)
        except StationConfigError as error:
            field = "name" if error.field == "name" else f"config_yaml.{error.field}"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {error.problem}")
            return st.StationStatus()
        sent_at = time.time_ns()
        await self._send(
            "station_command",
            st.StationCommand(name=request.name, action="start", config_yaml=request.config_yaml),
            request.name,
        )
        status = await self.directory.wait_for(
            request.name,
            lambda s: s.running and s.updated_unix_ns >= sent_at,
            WAIT_FOR_STATION_S,
        )
        if status is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"station {request.name} did not start within {WAIT_FOR_STATION_S:.0f} s "
                "(is the station service running?)",
            )
        return status

    async def StopStation(self, request: st.StationName, context):
        await self._known(request.name, context)
        await self._send(
            "station_command", st.StationCommand(name=request.name, action="stop"), request.name
        )
        return await self.directory.wait_for(
            request.name, lambda s: not s.running, WAIT_FOR_STATION_S
        )

    async def GetStation(self, request: st.StationName, context):
        return await self._known(request.name, context, answer=True)

    async def SendFeedback(self, request: st.StationFeedback, context):
        status = await self._known(request.station, context, "station")
        if request.kind not in ("like", "skip"):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"kind: {request.kind!r} is not like or skip"
            )
        entry = next((e for e in status.program if e.piece_id == request.piece_id), None)
        if entry is None:
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"piece_id: {request.piece_id[:40]!r} is not in station {request.station}",
            )
        count = entry.likes if request.kind == "like" else entry.skips
        await self._send("station_feedback", request, request.station)

        def counted(s: st.StationStatus) -> bool:
            e = next((e for e in s.program if e.piece_id == request.piece_id), None)
            return e is not None and (e.likes if request.kind == "like" else e.skips) > count

        return await self.directory.wait_for(request.station, counted, WAIT_FOR_STATION_S)

    async def PlanSession(self, request: st.PlanRequest, context):
        try:
            name = request.plan_name or f"plan-{uuid.uuid4().hex[:8]}"
            try:
                check_station_name(name)
            except StationConfigError as error:
                raise PlanError("plan_name", error.problem) from None
            if request.preset or request.session_yaml:
                command, steps = self._session(request, name)
            else:
                start = State.from_pb(request.start, "start")
                target = State.from_pb(request.target, "target")
                # built as data and dumped, never by pasting the client's text into YAML
                config = {"styles": {request.style or "folk": 1}, "bars": request.bars or 16}
                config_yaml = yaml.safe_dump({**config, "meters": ["4/4"]}, sort_keys=False)
                parse_station_config(config_yaml)
                steps = plan_session(
                    start,
                    target,
                    minutes=request.minutes,
                    pieces=request.pieces,
                    bars=request.bars or 16,
                )
                command = st.StationCommand(
                    name=name, action="start", config_yaml=config_yaml, plan=steps
                )
        except (PlanError, StationConfigError) as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return st.PlanReply()
        await self._send("station_command", command, name)
        return st.PlanReply(plan_name=name, steps=steps)

    def _session(
        self, request: st.PlanRequest, name: str
    ) -> tuple[st.StationCommand, list[st.PlanStep]]:
        """A listening session's start command and its open-loop plan (the reference that
        closed-loop adjustments are logged against)."""
        start = State.from_pb(request.start, "start") if request.HasField("start") else None
        target = State.from_pb(request.target, "target") if request.HasField("target") else None
        overrides = request.session_yaml
        extra: dict[str, object] = {}
        if request.minutes:
            extra["minutes"] = request.minutes
        if request.bars:
            extra["piece_bars"] = request.bars
        if request.style:
            extra["style"] = request.style
        if extra:
            parsed = (
                load_yaml_text(overrides, "session_yaml", PlanError) if overrides.strip() else {}
            )
            if not isinstance(parsed, dict):
                session_config(request.preset, overrides)  # raises, naming session_yaml
                parsed = {}
            overrides = yaml.safe_dump({**parsed, **extra})
        config = session_config(request.preset, overrides, start=start, target=target)
        station_config = {
            "styles": {config.style: 1},
            "bars": config.piece_bars,
            "meters": ["4/4"],
            "buffer_pieces": 1,
            "crossfade_seconds": 1.0,
        }
        if config.palette:
            station_config["palettes"] = {config.palette: 1}
        config_yaml = yaml.safe_dump(station_config, sort_keys=False)
        parse_station_config(config_yaml)
        steps = reference_plan(config)
        session = new_session_state(session_config_to_yaml(config), config)
        closed = config.mode is not ControlMode.OPEN
        command = st.StationCommand(
            name=name,
            action="start",
            config_yaml=config_yaml,
            plan=[] if closed else steps,
            session=session,
        )
        return command, steps

    async def SendSignals(self, request_iterator, context):
        count = 0
        async for signal in request_iterator:
            try:
                check_signal(signal)
            except SignalError as error:
                await _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"signals[{count}].{error.field}: {error.problem}",
                )
            status = await self._known(signal.station, context, f"signals[{count}].station")
            if not status.HasField("session"):
                await _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"signals[{count}].station: {signal.station} is not a listening session "
                    "(PlanSession with a preset or session_yaml)",
                )
            await self._send("station_signal", signal, signal.station)
            count += 1
        return st.SignalsAccepted(count=count)

    async def _known(
        self, name: str, context, field: str = "name", *, answer: bool = False
    ) -> st.StationStatus:
        """The station's status (with its fingerprints when it is the ``answer``, else the
        snapshot as is); NOT_FOUND naming ``field`` (the request's field that holds the
        station's name) when the gateway does not know it."""
        status = None
        if name in self.directory.stations:
            stream = self.directory.stream(name)
            status = stream.with_fingerprints() if answer else stream.status
        if status is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"{field}: no station {name[:60]!r}")
        return status
