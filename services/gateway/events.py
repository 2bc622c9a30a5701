"""The gateway's view of the event log: one consumer over every output topic, fanning each
piece's events out to the Compose streams that wait for them.

The consumer joins no group: every gateway replica must see every event, since the client
of a piece may be connected to any of them. Duplicates (at-least-once delivery) are
dropped per (piece, event kind, index) so a client sees each bar exactly once. A render
segment's audio is not in its record but in the segment store (``cantus.segment_store``);
``for_client`` puts it back, only for the segments a client is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from google.protobuf.message import Message

from cantus.events.codec import (
    InvalidEvent,
    decode_event,
    encode_event,
    kind_of,
    new_meta,
    topic_kind,
)
from cantus.kafka_clients import unmanaged_consumer
from cantus.segment_store import render_segment_store
from cantus.settings import Settings
from cantus.storage import StorageError
from cantus.v1 import events_pb2 as pb

log = logging.getLogger("cantus.gateway.events")

RELAYED_KINDS = (
    "melody_bar",
    "harmony_bar",
    "lyric_line",
    "render_segment",
    "piece_completed",
    "dead_letter",
)
"""Event kinds the gateway follows."""
RECENT_PIECES = 64
GATEWAY_OWNED_KINDS = ("render_segment", "piece_completed")
"""Topics no service consumes: the gateway dead-letters invalid events found there."""


class PieceEventRouter:
    """Consumes the output topics and delivers each piece's events to its subscribers."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.consumer: AIOKafkaConsumer | None = None
        self._subscribers: dict[str, list[asyncio.Queue[Message]]] = defaultdict(list)
        self._recent: OrderedDict[str, list[Message]] = OrderedDict()
        """The last ``RECENT_PIECES`` pieces' events, replayed to a late subscriber (the web
        player opens a piece's event stream after its first bars are out)."""
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.segment_audio = render_segment_store(settings)

    async def for_client(self, message: Message) -> Message:
        """``message`` as a client gets it: a render segment with its audio read back from
        the segment store (and without ``audio_uri``: the store's place is the server's
        business). A segment whose audio the store no longer has goes without it, logged."""
        if not isinstance(message, pb.RenderSegment) or not message.audio_uri:
            return message
        sent = pb.RenderSegment()
        sent.CopyFrom(message)
        sent.audio_uri = ""
        try:
            sent.audio = await asyncio.to_thread(
                self.segment_audio.read_uri, message.meta.piece_id, message.audio_uri
            )
        except StorageError as error:
            log.warning(
                "piece %s segment %d goes without its audio: %s",
                message.meta.piece_id,
                message.meta.index,
                error,
            )
        return sent

    async def start(self) -> None:
        topics = [getattr(self.settings.topics, kind) for kind in RELAYED_KINDS]
        self.consumer = unmanaged_consumer(
            self.settings,
            auto_offset_reset="latest",
        )
        await self.consumer.start()
        partitions = []
        for topic in topics:
            for partition in sorted(self.consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, partition))
        if not partitions:
            await self.consumer.stop()
            raise RuntimeError(f"none of the topics {topics} exist on {self.settings.broker}")
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve positions now, so nothing published after this is missed
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="piece-event-router")
        self.ready.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await self.consumer.stop()

    def subscribe(self, piece_id: str, *, replay: bool = False) -> asyncio.Queue[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        for message in self._recent.get(piece_id, []) if replay else []:
            queue.put_nowait(message)
        self._subscribers[piece_id].append(queue)
        return queue

    def unsubscribe(self, piece_id: str, queue: asyncio.Queue[Message]) -> None:
        queues = self._subscribers.get(piece_id, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._subscribers.pop(piece_id, None)

    async def _run(self) -> None:
        assert self.consumer is not None
        async for record in self.consumer:
            try:
                kind = topic_kind(self.settings.topics, record.topic)
                message = decode_event(kind, record.value, record.headers)
            except (InvalidEvent, KeyError) as error:
                await self._reject(record, str(error))
                continue
            piece_id = message.meta.piece_id
            self._recent.setdefault(piece_id, []).append(message)
            self._recent.move_to_end(piece_id)
            while len(self._recent) > RECENT_PIECES:
                self._recent.popitem(last=False)
            for queue in self._subscribers.get(piece_id, ()):
                queue.put_nowait(message)

    async def _reject(self, record, reason: str) -> None:
        kind = topic_kind(self.settings.topics, record.topic)
        if kind not in GATEWAY_OWNED_KINDS:
            return  # the service consuming that topic dead-letters it
        log.warning("dead-lettering invalid event from %s: %s", record.topic, reason)
        letter = pb.DeadLetter(
            meta=new_meta("unknown", 0, "gateway"),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            source_key=record.key or b"",
            source_value=record.value or b"",
            reason=reason,
            kind="invalid_event",
            service="gateway",
        )
        key, value, headers = encode_event(letter, source="gateway")
        await self.producer.send_and_wait(
            self.settings.topics.dead_letter, value, key=key, headers=headers
        )


def dedup_key(message: Message) -> tuple[str, int]:
    """Identity of an event within its piece: (kind, index)."""
    return kind_of(message), message.meta.index
