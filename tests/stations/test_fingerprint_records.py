"""A station's fingerprints travel in records of their own, written when they change, so
that the snapshot written every few seconds stays small; the station service and the
gateway put them back together."""

from __future__ import annotations

import asyncio

from cantus.settings import Settings
from cantus.stations.records import (
    decode_station_record,
    fingerprints_key,
    fingerprints_record,
    merge_fingerprints,
    snapshot_without_fingerprints,
)
from cantus.v1 import station_pb2 as st
from services.gateway.stations import StationDirectory
from services.station.app import StationService


def _status(pieces: int, updated: int = 10) -> st.StationStatus:
    status = st.StationStatus(name="radio", running=True, updated_unix_ns=updated)
    for i in range(pieces):
        status.program.add(piece_id=f"{i:032x}", status="streamed")
        status.fingerprints.add(piece_id=f"{i:032x}", intervals=[2, -2, 1] * 20)
    return status


def test_a_snapshot_splits_from_its_fingerprints_and_merges_back():
    status = _status(300)
    snapshot, record = snapshot_without_fingerprints(status), fingerprints_record(status)
    assert not snapshot.fingerprints and record.fingerprints_only
    assert list(record.fingerprints) == list(status.fingerprints)
    assert not record.program and record.name == "radio"
    assert snapshot.ByteSize() < status.ByteSize() / 2  # what is written every few seconds
    assert merge_fingerprints(snapshot, record) == status
    assert merge_fingerprints(snapshot, None) == snapshot
    older_inline = _status(2, updated=5)  # a snapshot from before the records: kept inline
    assert merge_fingerprints(older_inline, record).fingerprints == status.fingerprints
    newer_inline = _status(2, updated=50)
    assert merge_fingerprints(newer_inline, record) == newer_inline


class RecordingProducer:
    def __init__(self):
        self.sent: list[tuple[bytes, st.StationStatus]] = []

    async def send_and_wait(self, topic, value, key=None, headers=None):
        self.sent.append((key, decode_station_record("station_state", value, headers)))


def test_the_station_writes_its_fingerprints_once_per_change(tmp_path):
    service = StationService(Settings(data_dir=tmp_path))
    service.producer = RecordingProducer()  # type: ignore[assignment]
    status = _status(3)

    async def publish_three_times():
        await service.publish_state(status)
        await service.publish_state(status)  # nothing new in the fingerprints
        status.fingerprints.add(piece_id="f" * 32, intervals=[1])
        await service.publish_state(status)

    asyncio.run(publish_three_times())
    sent = service.producer.sent  # type: ignore[attr-defined]
    keys = [key for key, _ in sent]
    assert keys == [
        fingerprints_key("radio").encode(),
        b"radio",
        b"radio",
        fingerprints_key("radio").encode(),
        b"radio",
    ]
    assert all(not s.fingerprints for key, s in sent if key == b"radio")
    assert len(sent[3][1].fingerprints) == 4 and sent[3][1].fingerprints_only
    assert service.snapshots["radio"].fingerprints == status.fingerprints  # kept whole


def test_the_gateway_answers_with_the_fingerprints():
    settings = Settings()
    directory = StationDirectory(settings)
    status = _status(4)
    snapshot, record = snapshot_without_fingerprints(status), fingerprints_record(status)
    for message in (record, snapshot):
        directory.on_record(
            settings.topics.station_state,
            message.SerializeToString(),
            [("ce_type", b"cantus.station.state.v1")],
            0,
        )
    stream = directory.stream("radio")
    assert stream.status == snapshot  # a fingerprints record is not a snapshot
    answered = asyncio.run(directory.wait_for("radio", lambda s: s.running, 1.0))
    assert answered is not None and len(answered.fingerprints) == 4
    assert not stream.status.fingerprints  # the directory's own copy stays small
