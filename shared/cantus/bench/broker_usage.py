"""What a broker keeps, topic by topic: every record read back from the start and counted.

The embedded broker (Tansu 0.6.0 on ``memory://``) applies no retention and compacts
nothing, so what it holds is every record ever written: its memory is this sum. On a Kafka
with retention the same figures say what the retention window holds. ``cantus bench soak``
reports it at the end of its run (#22), so that a growing broker is traced to its topics.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class TopicUsage:
    topic: str
    records: int
    bytes: int
    """Keys, values and headers, as the records carry them (the broker's own overhead and
    batching are left out)."""


async def topic_usage(bootstrap: str, *, idle_timeout_s: float = 10.0) -> list[TopicUsage]:
    """Every topic's records and bytes, the largest first. Reads each partition from its
    first offset to the end offset seen at the start; gives up on partitions that return
    nothing for ``idle_timeout_s``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=32 << 20,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in sorted(await consumer.topics())
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        records: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        if partitions:
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            left = {tp for tp in partitions if ends[tp] > starts[tp]}
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while left:
                batch = await consumer.getmany(
                    *left, timeout_ms=int(idle_timeout_s * 1000), max_records=5000
                )
                if not batch:
                    break
                for tp, fetched in batch.items():
                    for record in fetched:
                        if record.offset >= ends[tp]:
                            continue  # written after the count began
                        records[tp.topic] += 1
                        sizes[tp.topic] += (
                            len(record.key or b"")
                            + len(record.value or b"")
                            + sum(len(k) + len(v or b"") for k, v in record.headers)
                        )
                    if fetched and fetched[-1].offset + 1 >= ends[tp]:
                        left.discard(tp)
        topics = {tp.topic for tp in partitions}
        usage = [TopicUsage(topic, records[topic], sizes[topic]) for topic in topics]
        return sorted(usage, key=lambda u: (-u.bytes, u.topic))
    finally:
        await consumer.stop()


def read_topic_usage(bootstrap: str) -> list[TopicUsage]:
    return asyncio.run(topic_usage(bootstrap))


def format_usage(usage: list[TopicUsage], *, pieces: int = 0) -> list[str]:
    """A Markdown table of ``usage``: records, MiB, share and, given ``pieces``, KiB per
    piece."""
    total = sum(u.bytes for u in usage) or 1
    per_piece = pieces > 0
    lines = [
        "| topic | records | MiB | share |" + (" KiB per piece |" if per_piece else ""),
        "|---|---:|---:|---:|" + ("---:|" if per_piece else ""),
    ]
    for u in usage:
        if not u.records:
            continue
        row = f"| {u.topic} | {u.records} | {u.bytes / 2**20:.2f} | {100 * u.bytes / total:.1f} % |"
        if per_piece:
            row += f" {u.bytes / 1024 / pieces:.1f} |"
        lines.append(row)
    all_records = sum(u.records for u in usage)
    row = f"| all | {all_records} | {sum(u.bytes for u in usage) / 2**20:.2f} | 100 % |"
    if per_piece:
        row += f" {sum(u.bytes for u in usage) / 1024 / pieces:.1f} |"
    lines.append(row)
    return lines
