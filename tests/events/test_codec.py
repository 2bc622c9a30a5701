"""The event codec: CloudEvents headers, protobuf round trip, and rejection reasons."""

import pytest

from cantus.events.codec import (
    InvalidEvent,
    decode_event,
    encode_event,
    header_value,
    new_meta,
)
from cantus.v1 import events_pb2 as pb


def make_spec(**overrides) -> pb.PieceSpec:
    fields = dict(
        key_tonic=0,
        mode=pb.MODE_MAJOR,
        tempo_bpm=100,
        meter_numerator=4,
        meter_denominator=4,
        bars=16,
        style="folk",
        mood="calm",
        energy="low",
        melody_source=pb.MELODY_SOURCE_COMPOSE,
    )
    fields.update(overrides)
    return pb.PieceSpec(**fields)


def make_bar(index: int = 0, **spec_overrides) -> pb.MelodyBar:
    return pb.MelodyBar(
        meta=new_meta("0123456789abcdef0123456789abcdef", index, "melody"),
        spec=make_spec(**spec_overrides),
        notes=[pb.Note(onset_ticks=0, pitch=60, duration_ticks=480, velocity=90)],
    )


def test_round_trip_keeps_payload_and_sets_cloudevents_headers():
    bar = make_bar(3)
    key, value, headers = encode_event(bar, source="melody")
    assert key == b"0123456789abcdef0123456789abcdef"
    assert header_value(headers, "ce_type") == "cantus.melody.bar.v1"
    assert header_value(headers, "ce_source") == "cantus/melody"
    assert header_value(headers, "ce_specversion") == "1.0"
    decoded = decode_event("melody_bar", value, headers)
    assert decoded == bar
    assert decoded.meta.produced_at_unix_ns > 0


def test_faust_style_dict_headers_are_read():
    _, value, headers = encode_event(make_bar(), source="melody")
    assert decode_event("melody_bar", value, dict(headers)).meta.index == 0


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"x", [], "missing ce_type"),
        (b"x", [("ce_type", b"cantus.nope.v1")], "unknown ce_type"),
        (b"\xff\xff\xff", [("ce_type", b"cantus.melody.bar.v1")], "not a valid"),
        (b"", [("ce_type", b"cantus.melody.bar.v1")], "piece_id is empty"),
        (None, [("ce_type", b"cantus.melody.bar.v1")], "no value"),
    ],
)
def test_undecodable_records_are_rejected_with_a_reason(value, headers, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode_event("melody_bar", value, headers)


def test_event_on_the_wrong_topic_is_rejected():
    _, value, headers = encode_event(make_bar(), source="melody")
    with pytest.raises(InvalidEvent, match="does not belong"):
        decode_event("harmony_bar", value, headers)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda bar: setattr(bar.meta, "schema_version", 7), "schema_version 7"),
        (lambda bar: setattr(bar.meta, "index", 16), "past the piece"),
        (lambda bar: setattr(bar.notes[0], "pitch", 200), "pitch 200"),
        (lambda bar: setattr(bar.notes[0], "duration_ticks", 0), "duration 0"),
        (lambda bar: setattr(bar.spec, "key_tonic", 12), "key_tonic 12"),
        (lambda bar: setattr(bar.meta, "piece_id", "../../etc"), "not a piece id"),
        (lambda bar: bar.ClearField("spec"), "spec is missing"),
    ],
)
def test_schema_invalid_events_are_rejected_naming_the_field(mutate, reason):
    bar = make_bar()
    mutate(bar)
    _, value, headers = encode_event(bar, source="test")
    with pytest.raises(InvalidEvent, match=reason):
        decode_event("melody_bar", value, headers)
