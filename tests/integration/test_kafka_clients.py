"""Standard Kafka clients against the embedded broker, and its persistent storage (#22).

librdkafka (under kcat, confluent-kafka and most Kafka tooling) lists and consumes Cantus topics
the project's aiokafka producer wrote: through confluent-kafka (librdkafka >= 2.2) and through
``cantus kcat`` (the system kcat on that librdkafka, cantus.kcat says why). With the broker's
``local-s3`` storage, topics, records and a group's committed offsets outlive kill -9 of the
broker. Only the broker (and its S3 store) run here, no Triton."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from cantus.events.codec import decode_event, encode_event, header_value, new_meta
from cantus.settings import S3_FETCH_MAX_WAIT_MS, Settings
from cantus.stack import Stack, private_stack_environment
from cantus.v1 import events_pb2 as pb

confluent_kafka = pytest.importorskip("confluent_kafka", reason="confluent-kafka not installed")
AdminClient = pytest.importorskip("confluent_kafka.admin").AdminClient

pytestmark = pytest.mark.integration

PIECE = "0123456789abcdef0123456789abcdef"


def _bar(index: int) -> pb.MelodyBar:
    spec = pb.PieceSpec(
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
    return pb.MelodyBar(
        meta=new_meta(PIECE, index, "melody"),
        spec=spec,
        notes=[pb.Note(onset_ticks=0, pitch=60 + index, duration_ticks=480, velocity=90)],
    )


def _produce(settings: Settings, indices: range) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
        await producer.start()
        try:
            for index in indices:
                key, value, headers = encode_event(_bar(index), source="melody")
                await producer.send_and_wait(
                    settings.topics.melody_bar, value, key=key, headers=headers
                )
        finally:
            await producer.stop()

    asyncio.run(send())


def _consume(settings: Settings, group: str, count: int, *, commit: bool = True) -> list:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.broker,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topics.melody_bar])
    records: list = []
    try:
        for _ in range(120):  # at most 60 s: a group join takes a few seconds
            if len(records) >= count:
                break
            record = consumer.poll(0.5)
            if record is None:
                continue
            assert record.error() is None, record.error()
            records.append(record)
            if commit:
                consumer.commit(record, asynchronous=False)
    finally:
        consumer.close()
    return records


def _indices(records: list) -> list[int]:
    return [decode_event("melody_bar", r.value(), r.headers()).meta.index for r in records]


@pytest.fixture
def broker_only(tmp_path: Path, monkeypatch) -> Iterator[Stack]:
    for name, value in private_stack_environment(tmp_path / "state").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CANTUS_PARTITIONS", "1")  # one partition: offsets are the bars' order
    stack = Stack(Settings(), owner=os.getpid())
    try:
        yield stack
    finally:
        stack.down()


def test_librdkafka_lists_and_consumes_cantus_topics(broker_only: Stack):
    stack = broker_only
    stack.start_broker()
    stack.create_topics()
    settings = stack.settings
    _produce(settings, range(3))

    admin = AdminClient({"bootstrap.servers": settings.broker})
    metadata = admin.list_topics(timeout=30)
    for topic in settings.topics.all():
        assert topic in metadata.topics, f"{topic} not listed by librdkafka"
        assert len(metadata.topics[topic].partitions) == settings.partitions

    records = _consume(settings, "librdkafka-test", 3)
    assert _indices(records) == [0, 1, 2]
    assert records[0].key() == PIECE.encode()
    assert header_value(records[0].headers(), "ce_type") == "cantus.melody.bar.v1"


def test_what_the_broker_keeps_is_counted_topic_by_topic(broker_only: Stack):
    """``cantus bench soak``'s account of the broker (cantus.bench.broker_usage)."""
    from cantus.bench.broker_usage import read_topic_usage

    stack = broker_only
    stack.start_broker()
    stack.create_topics()
    _produce(stack.settings, range(5))
    expected = 0
    for index in range(5):
        key, value, headers = encode_event(_bar(index), source="melody")
        expected += len(key) + len(value) + sum(len(k) + len(v) for k, v in headers)
    usage = {u.topic: u for u in read_topic_usage(stack.settings.broker)}
    melody = usage[stack.settings.topics.melody_bar]
    assert melody.records == 5
    assert abs(melody.bytes - expected) < 5 * 64  # the headers' times differ in length
    assert usage[stack.settings.topics.harmony_bar].records == 0


def test_cantus_kcat_lists_and_consumes_with_the_system_kcat(broker_only: Stack):
    from cantus.kcat import kcat_command

    stack = broker_only
    stack.start_broker()
    stack.create_topics()
    settings = stack.settings
    _produce(settings, range(2))

    argv, env = kcat_command(["-L", "-m", "30"], settings.broker)
    listing = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert f'topic "{settings.topics.melody_bar}" with 1 partitions' in listing.stdout

    topic = settings.topics.melody_bar
    argv, env = kcat_command(
        ["-C", "-t", topic, "-o", "beginning", "-e", "-m", "30", "-f", "%k %h\n"], settings.broker
    )
    consumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    lines = consumed.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(PIECE) and "ce_type=cantus.melody.bar.v1" in line for line in lines)


def test_local_s3_storage_keeps_topics_records_and_offsets_across_a_broker_kill(
    broker_only: Stack, monkeypatch
):
    monkeypatch.setenv("CANTUS_BROKER_STORAGE", "local-s3")
    stack = Stack(Settings(), owner=os.getpid())  # the same state folder, now on local-s3
    broker_only.settings = stack.settings
    stack.start_s3_store()
    stack.start_broker()
    stack.create_topics()
    settings = stack.settings
    _produce(settings, range(4))
    assert _indices(_consume(settings, "before-the-kill", 2)) == [0, 1]

    stack.kill("broker")
    stack.start_broker()

    admin = AdminClient({"bootstrap.servers": settings.broker})
    listed = admin.list_topics(timeout=30).topics
    assert all(topic in listed for topic in settings.topics.all()), "topics lost"
    # the group goes on from its committed offset; everything is still there from the start
    assert _indices(_consume(settings, "before-the-kill", 2)) == [2, 3]
    _produce(settings, range(4, 5))
    assert _indices(_consume(settings, "a-new-group", 5, commit=False)) == [0, 1, 2, 3, 4]


def _read_every_partition(settings: Settings, consumers: int, timeout_s: float) -> list[int]:
    """``consumers`` consumers built as the services build theirs (the settings' fetch wait),
    each assigned every partition of every Cantus topic, as a stream service's one fetch
    request asks for many; one record is produced to each partition. Returns, per consumer,
    how many partitions it read a record from within ``timeout_s``."""
    from aiokafka import TopicPartition

    from cantus.kafka_clients import unmanaged_consumer

    partitions = [
        TopicPartition(topic, p)
        for topic in settings.topics.all()
        for p in range(settings.partitions)
    ]

    async def run() -> list[int]:
        readers = [unmanaged_consumer(settings) for _ in range(consumers)]
        for reader in readers:
            await reader.start()
            reader.assign(partitions)
            await reader.seek_to_beginning()
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker)
        await producer.start()
        try:
            for tp in partitions:
                await producer.send_and_wait(tp.topic, b"x", partition=tp.partition)
        finally:
            await producer.stop()
        started = asyncio.get_running_loop().time()

        async def read(reader) -> int:
            seen: set = set()
            while len(seen) < len(partitions):
                if asyncio.get_running_loop().time() - started > timeout_s:
                    break
                batch = await reader.getmany(timeout_ms=500)
                seen.update(tp for tp, records in batch.items() if records)
            return len(seen)

        try:
            return list(await asyncio.gather(*(read(reader) for reader in readers)))
        finally:
            for reader in readers:
                await reader.stop()

    return asyncio.run(run())


def test_local_s3_storage_serves_every_partition_to_many_consumers(broker_only: Stack, monkeypatch):
    """The local-s3 stall (#22): Tansu spends one fetch's wait on its partitions one after
    another, and on S3 each costs round trips to the store; with the 20 ms that suits
    memory://, the partitions late in each consumer's request were never read (pieces sat
    on a partition for ten minutes). The settings give S3 storage a wait that reaches them."""
    monkeypatch.setenv("CANTUS_BROKER_STORAGE", "local-s3")
    monkeypatch.setenv("CANTUS_PARTITIONS", "4")
    stack = Stack(Settings(), owner=os.getpid())
    broker_only.settings = stack.settings
    settings = stack.settings
    assert settings.kafka_fetch_max_wait_ms == S3_FETCH_MAX_WAIT_MS
    stack.start_s3_store()
    stack.start_broker()
    stack.create_topics()

    partitions = len(settings.topics.all()) * settings.partitions
    assert _read_every_partition(settings, consumers=6, timeout_s=60) == [partitions] * 6
