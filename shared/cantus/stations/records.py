"""Kafka records ⇄ station messages (``protos/cantus/v1/station.proto``), in the same
CloudEvents binary mode as the piece events; the record key is the station name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message

from cantus.events.codec import CONTENT_TYPE, Headers, InvalidEvent, header_value, now_ns
from cantus.v1 import station_pb2 as st

STATION_TYPES: dict[str, tuple[type[Message], str]] = {
    "station_command": (st.StationCommand, "cantus.station.command.v1"),
    "station_state": (st.StationStatus, "cantus.station.state.v1"),
    "station_feedback": (st.StationFeedback, "cantus.station.feedback.v1"),
    "station_segment": (st.StationSegment, "cantus.station.segment.v1"),
    "station_signal": (st.ListenerSignal, "cantus.station.signal.v1"),
    "station_outcome": (st.OutcomeRecord, "cantus.station.outcome.v1"),
}
"""Station topic kind (a ``Topics`` field name) → payload and CloudEvents type."""


def encode_station_record(
    kind: str, message: Message, station: str, *, source: str
) -> tuple[bytes, bytes, Headers]:
    message_type, ce_type = STATION_TYPES[kind]
    if not isinstance(message, message_type):
        raise TypeError(f"{kind} carries {message_type.__name__}, not {type(message).__name__}")
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", ce_type.encode()),
        ("ce_source", f"cantus/{source}".encode()),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_time", datetime.fromtimestamp(now_ns() / 1e9, tz=UTC).isoformat().encode()),
        ("ce_subject", station.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    return station.encode(), message.SerializeToString(), headers


def decode_station_record(kind: str, value: bytes | None, headers) -> Message:
    """Parse one record of a station topic; raises ``InvalidEvent`` naming the problem."""
    message_type, ce_type = STATION_TYPES[kind]
    found = header_value(headers, "ce_type")
    if found != ce_type:
        raise InvalidEvent(f"ce_type is {found!r}, expected {ce_type!r}")
    message = message_type()
    try:
        message.ParseFromString(value or b"")
    except DecodeError as error:
        raise InvalidEvent(f"undecodable {message_type.__name__}: {error}") from None
    return message
