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
    kind: str, message: Message, station: str, *, source: str, key: str | None = None
) -> tuple[bytes, bytes, Headers]:
    """The record of ``message``, keyed by ``station`` unless ``key`` says otherwise."""
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
    return (key or station).encode(), message.SerializeToString(), headers


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


# --- a station's fingerprints, in records of their own ------------------------------------
# A snapshot is written every few seconds; up to 1000 fingerprints (~0.15 MB of 16-bar
# melodies) made each one that large, and the broker kept them all (the state topic is
# compacted on Kafka; Tansu's memory engine keeps every record). They change once a piece.


def fingerprints_key(station: str) -> str:
    """The record key of a station's fingerprints (compaction keeps its latest)."""
    return f"{station}/fingerprints"


def fingerprints_signature(status: st.StationStatus) -> tuple[str, ...]:
    """What tells whether the fingerprints changed since they were last published."""
    return tuple(fingerprint.piece_id for fingerprint in status.fingerprints)


def snapshot_without_fingerprints(status: st.StationStatus) -> st.StationStatus:
    """The snapshot as published: ``status`` less its fingerprints (a copy)."""
    snapshot = st.StationStatus()
    snapshot.CopyFrom(status)
    snapshot.ClearField("fingerprints")
    return snapshot


def fingerprints_record(status: st.StationStatus) -> st.StationStatus:
    """The station's fingerprints alone (``fingerprints_only``), as their own record."""
    return st.StationStatus(
        name=status.name,
        updated_unix_ns=status.updated_unix_ns,
        fingerprints=status.fingerprints,
        fingerprints_only=True,
    )


def merge_fingerprints(
    snapshot: st.StationStatus, record: st.StationStatus | None
) -> st.StationStatus:
    """``snapshot`` with the fingerprints of ``record`` (the station's latest fingerprints
    record), unless the snapshot carries newer ones of its own (written before the
    fingerprints had records of their own). Returns a copy; the arguments are unchanged."""
    merged = st.StationStatus()
    merged.CopyFrom(snapshot)
    if record is not None and (
        not snapshot.fingerprints or record.updated_unix_ns >= snapshot.updated_unix_ns
    ):
        merged.ClearField("fingerprints")
        merged.fingerprints.extend(record.fingerprints)
    return merged
