"""A station's snapshot stays one Kafka record however long it runs, a restart from it goes
on where it was (positions, seeds, the repeat check), and old unbounded snapshots load."""

import random
import time
import uuid

from cantus.stations import novelty
from cantus.stations.plans import State, plan_session
from cantus.stations.program import (
    SNAPSHOT_VERSION,
    Program,
    SnapshotLimits,
    _seed,
    new_status,
)
from cantus.stations.records import decode_station_record, encode_station_record
from cantus.v1 import events_pb2 as pb
from cantus.v1 import station_pb2 as st

CONFIG = "styles: {folk: 1}\nbars: 16\nbuffer_pieces: 2\n"
KAFKA_MESSAGE_LIMIT = 1_000_000
"""Kafka's default largest record (message.max.bytes), about 1 MB."""
PIECE_SECONDS = 40.0


def random_melody(rng: random.Random, notes: int = 16 * 7) -> list[int]:
    """A random walk of pitches: 16 bars of a folk tune's worth of notes."""
    pitch, pitches = 64, []
    for _ in range(notes):
        pitch = min(84, max(48, pitch + rng.choice([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 7])))
        pitches.append(pitch)
    return pitches


def play(program: Program, pieces: int, rng: random.Random) -> tuple[list[int], list[list[int]]]:
    """Run the station for ``pieces`` pieces, each composed, streamed and (two pieces
    behind the stream) played; returns the seeds asked for and the accepted melodies."""
    seeds, melodies = [], []
    status = program.status
    for _ in range(pieces):
        entry, request = program.next_request(uuid.uuid4().hex)
        seeds.append(request.seed)
        melody = random_melody(rng)
        if not program.melody_done(entry.piece_id, melody):
            continue
        melodies.append(melody)
        program.completed(
            entry.piece_id, pb.PieceCompleted(duration_seconds=PIECE_SECONDS, integrated_lufs=-14)
        )
        entry.stream_start_seconds = status.stream_seconds
        entry.fed_seconds = PIECE_SECONDS
        entry.status = "streamed"
        status.stream_seconds += PIECE_SECONDS
        playback = max(status.stream_seconds - 2 * PIECE_SECONDS, 0.0)
        status.stream_started_unix_ns = time.time_ns() - int(playback * 1e9)
    return seeds, melodies


def snapshot_record(status: st.StationStatus) -> bytes:
    _, value, _ = encode_station_record("station_state", status, status.name, source="test")
    return value


def restart(value: bytes) -> Program:
    headers = [("ce_type", b"cantus.station.state.v1")]
    return Program(decode_station_record("station_state", value, headers))


def test_a_station_after_5000_pieces_snapshots_well_under_a_kafka_record():
    limits = SnapshotLimits()
    program = Program(new_status("radio", CONFIG))
    seeds, melodies = play(program, 5000, random.Random(1))
    value = snapshot_record(program.status)
    assert len(value) < KAFKA_MESSAGE_LIMIT / 4  # measured ~0.17 MB; 1.4 MB unbounded
    assert len(program.status.fingerprints) == limits.fingerprints
    assert len(program.status.program) <= limits.history_pieces + 3  # + those still to play

    again = restart(value)
    assert again.status.next_position == 5000
    entry, request = again.next_request(uuid.uuid4().hex)
    assert entry.position == 5000 and request.seed not in seeds
    recent = [p + 3 for p in melodies[-10]]  # a transposed copy of a recent melody
    assert not again.melody_done(entry.piece_id, recent)
    assert "near-duplicate" in again.entry(entry.piece_id).reason
    # the oldest melodies are out of the capped store: they no longer count as repeats
    entry, _ = again.next_request(uuid.uuid4().hex)
    assert again.melody_done(entry.piece_id, melodies[0])


def test_the_fingerprint_keeps_only_the_first_steps_on_both_sides():
    program = Program(new_status("s", CONFIG), SnapshotLimits(fingerprint_intervals=16))
    rng = random.Random(2)
    tune = random_melody(rng, 17)
    (first, _), (second, _), _ = [program.next_request(uuid.uuid4().hex) for _ in range(3)]
    assert program.melody_done(first.piece_id, tune + random_melody(rng, 200))
    assert len(program.status.fingerprints[0].intervals) == 16
    assert not program.melody_done(second.piece_id, tune + random_melody(rng, 200))


def test_plan_progress_survives_its_pieces_leaving_the_window():
    steps = plan_session(State(110, 0.8, 0.9), State(65, 0.1, 0.2), pieces=3, bars=4)
    program = Program(new_status("p", CONFIG, steps), SnapshotLimits(history_pieces=1))
    made = []
    while program.wants_piece(now_ns=0):
        made.append(program.next_request(uuid.uuid4().hex)[0])
    program.reject(made[1].piece_id, "outside plan step 1")
    made.append(program.next_request(uuid.uuid4().hex)[0])
    for start, entry in enumerate(e for e in made if e.status != "rejected"):
        entry.status, entry.stream_start_seconds, entry.fed_seconds = "streamed", start * 8, 8
    program.status.stream_seconds = 24
    program.status.stream_started_unix_ns = 1
    program.trim(now_ns=100 * 10**9)
    assert len(program.status.program) == 1
    assert sorted(program.status.plan_progress.steps_done) == [0, 2]
    assert dict(program.status.plan_progress.rejections) == {1: 1}
    assert program.plan_finished() and not program.wants_piece(now_ns=100 * 10**9)


def old_format_snapshot(pieces: int, rng: random.Random) -> tuple[st.StationStatus, list]:
    """A snapshot as written before the window: every piece, each with its melody."""
    status = new_status("old", CONFIG)
    status.ClearField("snapshot_version")
    melodies = []
    for position in range(pieces):
        melody = random_melody(rng)
        rejected = position % 50 == 7
        status.program.add(
            piece_id=f"{position:032x}",
            position=position,
            status="rejected" if rejected else "streamed",
            stream_start_seconds=-1 if rejected else position * PIECE_SECONDS,
            duration_seconds=PIECE_SECONDS,
            fed_seconds=PIECE_SECONDS,
            melody_intervals=novelty.pitches_to_intervals(melody),
            plan_step=-1,
        )
        melodies.append(None if rejected else melody)
    status.program.add(piece_id="f" * 32, position=pieces, status="requested", plan_step=-1)
    status.stream_seconds = pieces * PIECE_SECONDS
    status.stream_started_unix_ns = time.time_ns() - int(status.stream_seconds * 1e9)
    return status, melodies


def test_an_old_unbounded_snapshot_loads_and_is_migrated():
    old, melodies = old_format_snapshot(1500, random.Random(3))
    assert len(snapshot_record(old)) > KAFKA_MESSAGE_LIMIT / 4
    limits = SnapshotLimits()
    program = restart(snapshot_record(old))
    status = program.status
    assert status.snapshot_version == SNAPSHOT_VERSION
    assert status.next_position == 1501  # the requested piece is at 1500
    assert len(status.fingerprints) == limits.fingerprints
    assert status.fingerprints[-1].piece_id == f"{1499:032x}"
    assert not any(e.melody_intervals for e in status.program)
    assert len(status.program) == limits.history_pieces + 1
    assert program.entry("f" * 32).status == "requested"  # still to be delivered
    entry, request = program.next_request(uuid.uuid4().hex)
    assert entry.position == 1501 and request.seed == _seed("old", 1501)
    assert not program.melody_done(entry.piece_id, melodies[1400])
    assert len(snapshot_record(status)) < KAFKA_MESSAGE_LIMIT / 4
