"""What every Faust stream service shares: the app, its topics, the event loop around a
handler (decode → handle → publish), dead letters, health and metrics (the metrics and logs
themselves: ``observability``; the tuned Kafka transport: ``transport``; skipped offsets:
``offsets``).

Delivery is at-least-once: a handler awaits the broker's acknowledgement of everything it
publishes before its input event is acknowledged, and Faust commits only acknowledged
offsets. A service killed mid-event sees that event again after restart, so every handler
is idempotent on (piece_id, index). ``exactly_once`` is avoided on purpose (faust-streaming
issues #323, #517, #177: duplicates and ProducerFenced on rebalance).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

import faust
from faust.types import TP
from google.protobuf.message import Message
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cantus.events.codec import (
    EVENT_TYPES,
    InvalidEvent,
    decode_event,
    encode_event,
    new_meta,
    now_ns,
    topic_kind,
)
from cantus.kafka_clients import unmanaged_consumer
from cantus.security import faust_credentials
from cantus.settings import Settings, load_settings
from cantus.streaming.observability import (
    ERRORS,
    EVENTS_IN,
    EVENTS_OUT,
    STAGE_LATENCY,
    configure_logging,
)
from cantus.streaming.offsets import STALL_SECONDS, OffsetGuard
from cantus.streaming.transport import CantusApp, TunedConsumerThread
from cantus.triton_client import upstream_unavailable
from cantus.v1 import events_pb2 as pb


@dataclass(frozen=True)
class Received:
    """Where an input event came from and when it arrived (Unix ns)."""

    topic: str
    partition: int
    offset: int
    received_at_ns: int


Handler = Callable[[Message, Received], Awaitable[None]]


@dataclass(frozen=True)
class Record:
    """One Kafka record as the handler loop sees it, from Faust or from a side consumer."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] | dict | None


class StreamService:
    """One Faust app for one service, e.g. ``StreamService("harmony")``."""

    def __init__(self, name: str, settings: Settings | None = None) -> None:
        self.name = name
        self.settings = settings or load_settings()
        self.log = logging.getLogger(f"cantus.{name}")
        s = self.settings
        datadir = s.state_dir / "faust" / name
        datadir.mkdir(parents=True, exist_ok=True)
        TunedConsumerThread.fetch_max_wait_ms = s.kafka_fetch_max_wait_ms
        self.app = CantusApp(
            f"cantus-{name}",
            broker=[f"kafka://{address}" for address in s.broker.split(",")],
            broker_credentials=faust_credentials(s),
            store="memory://",  # tables are rebuilt from their changelog topics on start
            datadir=str(datadir),
            key_serializer="raw",
            value_serializer="raw",
            topic_partitions=s.partitions,
            topic_replication_factor=s.kafka_replication_factor,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
            broker_commit_interval=0.5,
            producer_acks=-1,
            web_enabled=True,
            web_bind=s.host,  # 0.0.0.0 in a pod, so kubelet probes and Prometheus reach it
            web_port=s.web_port(name),
            web_host="127.0.0.1",
        )
        self._topics: dict[str, faust.TopicT] = {}
        self._offsets: OffsetGuard[TP] = OffsetGuard(self._committed_offset)
        self._channels: list[faust.ChannelT] = []

        @self.app.timer(interval=STALL_SECONDS)
        async def seek_stalled_partitions() -> None:
            try:
                await self._seek_stalled_partitions()
            except Exception:  # a failed check is retried at the next tick
                self.log.exception("checking for undelivered records failed")

        self.app.on_partitions_revoked.connect(self._forget_offsets)
        self._register_pages()

    # --- topics --------------------------------------------------------------------------
    def topic(self, *kinds: str) -> faust.TopicT:
        """The Faust topic for one or more event kinds (``Topics`` field names)."""
        names = [getattr(self.settings.topics, kind) for kind in kinds]
        key = ",".join(names)
        if key not in self._topics:
            self._topics[key] = self.app.topic(
                *names,
                key_type=bytes,
                value_type=bytes,
                partitions=self.settings.partitions,
                internal=False,
            )
        return self._topics[key]

    # --- the loop around a handler -------------------------------------------------------
    async def process(self, stream: faust.StreamT, handle: Handler) -> None:
        """Run ``handle`` on every event of ``stream``; poison events go to the dead-letter
        topic, failing ones are retried then dead-lettered; the loop itself never dies."""
        channel = cast(faust.ChannelT, stream.channel)
        if all(known is not channel for known in self._channels):
            self._channels.append(channel)  # the actors of one agent share one
        async for event in stream.events():
            message = event.message
            self._offsets.begin(message.tp)
            try:
                skipped = self._offsets.take(message.tp, message.offset)
                if skipped is not None:
                    for record in await self._read_again(
                        message.topic, message.partition, *skipped
                    ):
                        await self._process_record(record, handle)
                await self._process_record(
                    Record(
                        message.topic,
                        message.partition,
                        message.offset,
                        event.key,
                        event.value,
                        event.headers,
                    ),
                    handle,
                )
            finally:
                self._offsets.end(message.tp)

    async def _seek_stalled_partitions(self) -> None:
        """The other half of ``OffsetGuard``: a dropped *tail* of a batch shows no later
        record, so every few seconds partitions with records waiting but none delivered are
        sought back to the next expected offset (from a timer, not from inside the agent)."""
        consumer = self.app.consumer
        if consumer is None or self.app.rebalancing:
            return
        if self.backlog():
            # Records fetched and queued for the agent's actors, all busy, are late, not
            # lost: seeking back would read them again. At 10 stations the render service
            # sought back 6 times a second and handled each record several times over.
            return
        ours = set(self.settings.topics.all())
        tps = [tp for tp in consumer.assignment() if tp.topic in ours]
        for tp, offset in self._offsets.stalled(tps, consumer.highwater, idle_s=STALL_SECONDS):
            position = await consumer.position(tp)
            if position is not None and position <= offset:
                # Not yet handed over by the consumer (a busy process fetches late): they
                # will come. A dropped tail is one the consumer's position has passed.
                continue
            self.log.warning(
                "%s: records from offset %d wait but were not delivered; seeking back to read them",
                tp,
                offset,
            )
            self._offsets.touch(tp)
            await consumer.seek(tp, offset)

    def backlog(self) -> int:
        """Records delivered to this service's agents and not yet taken by an actor."""
        return sum(channel.queue.qsize() for channel in self._channels)

    async def _process_record(self, record: Record, handle: Handler) -> None:
        received = Received(record.topic, record.partition, record.offset, now_ns())
        EVENTS_IN.labels(self.name, record.topic).inc()
        try:
            kind = topic_kind(self.settings.topics, record.topic)
            decoded = decode_event(kind, record.value, record.headers)
        except (InvalidEvent, KeyError) as error:
            ERRORS.labels(self.name, "invalid_event").inc()
            self.log.warning("dead-lettering invalid event from %s: %s", record.topic, error)
            await self.dead_letter(record, str(error), kind="invalid_event")
            return
        await self._handle_with_retries(handle, decoded, received, record)

    async def _read_again(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """Records ``start`` .. ``end - 1`` of one partition, read by a side consumer that
        joins no group (so Faust's own consumer is left alone)."""
        from aiokafka import TopicPartition

        self.log.warning(
            "%s[%d]: offsets %d..%d were skipped by the consumer; reading them again",
            topic,
            partition,
            start,
            end - 1,
        )
        tp = TopicPartition(topic, partition)
        consumer = unmanaged_consumer(self.settings)
        await consumer.start()
        records: list[Record] = []
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and (not records or records[-1].offset < end - 1):
                batch = await consumer.getmany(tp, timeout_ms=500)
                for r in batch.get(tp, []):
                    if r.offset < end:
                        records.append(
                            Record(r.topic, r.partition, r.offset, r.key, r.value, r.headers)
                        )
                if await consumer.position(tp) >= end:
                    break
        finally:
            await consumer.stop()
        return records

    async def _handle_with_retries(
        self, handle: Handler, decoded: Message, received: Received, record: Record
    ) -> None:
        attempts = self.settings.max_attempts
        attempt = 0
        unavailable_s = 0.0
        waits = 0
        while attempt < attempts:
            attempt += 1
            try:
                await handle(decoded, received)
                return
            except InvalidEvent as error:  # the payload is wrong in a way only the handler sees
                ERRORS.labels(self.name, "invalid_event").inc()
                await self.dead_letter(record, str(error), kind="invalid_event", decoded=decoded)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if upstream_unavailable(error) and unavailable_s < self.settings.unavailable_wait_s:
                    # Triton restarting: wait for it, not counted as a failed try (#22)
                    waits += 1
                    wait = min(0.5 * 2.0 ** (waits - 1), 10.0)  # 0.5, 1, 2 … 10 s
                    ERRORS.labels(self.name, "upstream_unavailable").inc()
                    self.log.warning(
                        "%s: a model server is unavailable (%s); retrying in %.1f s",
                        decoded.meta.piece_id,
                        type(error).__name__,
                        wait,
                    )
                    attempt -= 1
                    unavailable_s += wait
                    await asyncio.sleep(wait)
                    continue
                ERRORS.labels(self.name, "processing_failed").inc()
                self.log.exception(
                    "attempt %d/%d failed for %s", attempt, attempts, decoded.meta.piece_id
                )
                if attempt == attempts:
                    await self.dead_letter(
                        record,
                        f"{type(error).__name__}: {error}",
                        kind="processing_failed",
                        decoded=decoded,
                    )
                    return
                await asyncio.sleep(min(2.0**attempt * 0.25, 5.0))

    async def _forget_offsets(self, sender: object, /, *args: object, **kwargs: object) -> None:
        self._offsets.reset()

    def _committed_offset(self, tp: TP) -> int | None:
        return getattr(self.app.consumer, "committed_at_assignment", {}).get(tp)

    # --- publishing ----------------------------------------------------------------------
    async def publish(self, message: Message, *, received: Received | None = None) -> None:
        """Publish one event to its topic and wait for the broker's acknowledgement."""
        kind = next(k for k, t in EVENT_TYPES.items() if isinstance(message, t.message))
        topic_name = getattr(self.settings.topics, kind)
        key, value, headers = encode_event(message, source=self.name)
        pending = await self.topic(kind).send(key=key, value=value, headers=headers)
        await pending
        EVENTS_OUT.labels(self.name, topic_name).inc()
        if received is not None:
            STAGE_LATENCY.labels(self.name, topic_name).observe(
                (time.time_ns() - received.received_at_ns) / 1e9
            )

    async def dead_letter(
        self, record: Record, reason: str, *, kind: str, decoded: Message | None = None
    ) -> None:
        piece_id = decoded.meta.piece_id if decoded is not None else ""
        if not piece_id and isinstance(record.key, bytes):
            candidate = record.key.decode("utf-8", "replace")
            piece_id = candidate if candidate.replace("-", "").isalnum() else ""
        letter = pb.DeadLetter(
            meta=new_meta(piece_id or "unknown", 0, self.name),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            source_key=record.key if isinstance(record.key, bytes) else b"",
            source_value=record.value if isinstance(record.value, bytes) else b"",
            reason=reason,
            kind=kind,
            service=self.name,
        )
        await self.publish(letter)

    # --- health and metrics --------------------------------------------------------------
    def _register_pages(self) -> None:
        app = self.app

        @app.page("/health")
        async def health(web, request):
            consumer = app.consumer if app.consumer is not None else None
            ready = (
                consumer is not None
                and not app.rebalancing
                and bool(consumer.assignment())
                and app.tables.recovery.completed.is_set()
            )
            return web.json({"service": self.name, "ready": ready}, status=200 if ready else 503)

        @app.page("/metrics")
        async def metrics(web, request):
            return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    def run(self) -> None:
        """Run the worker until stopped (SIGTERM / SIGINT)."""
        configure_logging()
        worker = faust.Worker(self.app, loglevel="INFO", redirect_stdouts=False)
        worker.execute_from_commandline()
