"""Kafka records ⇄ Cantus events, in the CloudEvents Kafka binding's binary mode.

The record value is the protobuf payload (``protos/cantus/v1/events.proto``), the key is
the piece id, and the CloudEvents attributes travel as ``ce_*`` headers. Decoding checks
the header, the protobuf and the payload's own invariants, and raises ``InvalidEvent``
naming the problem, so a service can dead-letter the record and keep going.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message

from cantus.settings import Topics
from cantus.v1 import events_pb2 as pb

SCHEMA_VERSION = 1
CONTENT_TYPE = "application/protobuf"

Headers = list[tuple[str, bytes]]


class InvalidEvent(ValueError):
    """A record that is not a valid Cantus event; the message says why."""


@dataclass(frozen=True)
class EventType:
    """One kind of event: its protobuf class and its CloudEvents type name."""

    message: type[Message]
    ce_type: str


EVENT_TYPES: dict[str, EventType] = {
    "compose_requested": EventType(pb.ComposeRequested, "cantus.compose.requested.v1"),
    "melody_bar": EventType(pb.MelodyBar, "cantus.melody.bar.v1"),
    "harmony_bar": EventType(pb.HarmonyBar, "cantus.harmony.bar.v1"),
    "lyric_line": EventType(pb.LyricLine, "cantus.lyric.line.v1"),
    "render_segment": EventType(pb.RenderSegment, "cantus.render.segment.v1"),
    "piece_completed": EventType(pb.PieceCompleted, "cantus.piece.completed.v1"),
    "dead_letter": EventType(pb.DeadLetter, "cantus.dead-letter.v1"),
}
"""Event kind (a field name of ``Topics``) → payload. One topic carries one kind."""

_KIND_BY_CE_TYPE = {event_type.ce_type: kind for kind, event_type in EVENT_TYPES.items()}


def now_ns() -> int:
    return time.time_ns()


def new_meta(
    piece_id: str, index: int, producer: str, *, received_at_unix_ns: int = 0
) -> pb.EventMeta:
    """An event header stamped now; ``produced_at`` is set again by ``encode_event``."""
    return pb.EventMeta(
        piece_id=piece_id,
        index=index,
        schema_version=SCHEMA_VERSION,
        producer=producer,
        produced_at_unix_ns=now_ns(),
        received_at_unix_ns=received_at_unix_ns,
    )


def kind_of(message: Message) -> str:
    for kind, event_type in EVENT_TYPES.items():
        if isinstance(message, event_type.message):
            return kind
    raise TypeError(f"{type(message).__name__} is not a Cantus event")


def encode_event(message: Message, *, source: str) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) for a record carrying ``message``; stamps ``produced_at`` now."""
    kind = kind_of(message)
    meta = message.meta
    meta.produced_at_unix_ns = now_ns()
    produced = datetime.fromtimestamp(meta.produced_at_unix_ns / 1e9, tz=UTC)
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", EVENT_TYPES[kind].ce_type.encode()),
        ("ce_source", f"cantus/{source}".encode()),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_time", produced.isoformat().encode()),
        ("ce_subject", meta.piece_id.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    return meta.piece_id.encode(), message.SerializeToString(), headers


def header_value(headers: Sequence[tuple[str, bytes]] | dict | None, name: str) -> str | None:
    """A header as text, from aiokafka's list of pairs or Faust's dict."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == name:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def decode_event(
    expected_kind: str | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] | dict | None,
) -> Message:
    """Parse and validate one record. ``expected_kind`` (a ``Topics`` field name) is the kind
    the topic carries, or None to accept any Cantus event. Raises ``InvalidEvent``."""
    ce_type = header_value(headers, "ce_type")
    if ce_type is None:
        raise InvalidEvent("missing ce_type header: not a Cantus event")
    kind = _KIND_BY_CE_TYPE.get(ce_type)
    if kind is None:
        raise InvalidEvent(f"unknown ce_type {ce_type!r}")
    if expected_kind is not None and kind != expected_kind:
        raise InvalidEvent(f"ce_type {ce_type!r} does not belong on the {expected_kind} topic")
    if value is None:
        raise InvalidEvent("record has no value")
    message = EVENT_TYPES[kind].message()
    try:
        message.ParseFromString(value)
    except DecodeError as error:
        raise InvalidEvent(f"value is not a valid {ce_type} protobuf: {error}") from None
    validate_event(message)
    return message


def validate_event(message: Message) -> None:
    """Check the invariants protobuf cannot express; raises ``InvalidEvent`` naming the field."""
    meta = message.meta
    if not meta.piece_id:
        raise InvalidEvent("meta.piece_id is empty")
    if len(meta.piece_id) > 64 or not meta.piece_id.replace("-", "").isalnum():
        raise InvalidEvent(f"meta.piece_id {meta.piece_id[:80]!r} is not a piece id")
    if meta.schema_version != SCHEMA_VERSION:
        raise InvalidEvent(
            f"meta.schema_version {meta.schema_version} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    spec = getattr(message, "spec", None)
    if spec is not None and message.HasField("spec"):
        _validate_spec(spec)
    elif isinstance(message, pb.ComposeRequested | pb.MelodyBar | pb.HarmonyBar | pb.LyricLine):
        raise InvalidEvent("spec is missing")
    # these carry a spec: a missing one was rejected above
    bar_event = isinstance(message, pb.MelodyBar | pb.HarmonyBar | pb.LyricLine)
    if bar_event and spec is not None and meta.index >= spec.bars:
        raise InvalidEvent(f"meta.index {meta.index} is past the piece's {spec.bars} bars")
    for field_name in ("notes", "voicing", "bass"):
        for note in getattr(message, field_name, ()):
            _validate_note(note, field_name)


def _validate_spec(spec: pb.PieceSpec) -> None:
    if spec.key_tonic > 11:
        raise InvalidEvent(f"spec.key_tonic {spec.key_tonic} is not a pitch class 0..11")
    if spec.mode == pb.MODE_UNSPECIFIED:
        raise InvalidEvent("spec.mode is unspecified")
    if not spec.bars:
        raise InvalidEvent("spec.bars is 0")
    if not spec.meter_numerator or spec.meter_denominator not in (1, 2, 4, 8, 16, 32):
        raise InvalidEvent(f"spec.meter {spec.meter_numerator}/{spec.meter_denominator} is invalid")
    if not 1.0 <= spec.tempo_bpm <= 1000.0:
        raise InvalidEvent(f"spec.tempo_bpm {spec.tempo_bpm} is out of range")


def _validate_note(note: pb.Note, field_name: str) -> None:
    if note.pitch > 127:
        raise InvalidEvent(f"{field_name}: pitch {note.pitch} is not a MIDI pitch 0..127")
    if not note.duration_ticks:
        raise InvalidEvent(f"{field_name}: note at {note.onset_ticks} ticks has duration 0")
    if not 1 <= note.velocity <= 127:
        raise InvalidEvent(f"{field_name}: velocity {note.velocity} is not 1..127")


def topic_kind(topics: Topics, topic: str) -> str:
    """The event kind a topic carries (a ``Topics`` field name)."""
    for kind, name in topics.model_dump().items():
        if name == topic:
            return kind
    raise KeyError(f"{topic!r} is not a Cantus topic")
