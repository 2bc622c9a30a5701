"""aiokafka clients built the same way everywhere: the settings' brokers, fetch wait and
security (``cantus.security.kafka_client_options``)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer

from cantus.security import kafka_client_options
from cantus.settings import Settings


def unmanaged_consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group: the caller assigns its partitions and seeks, and no
    offset is ever committed (replaying topics, reading a range again, following all
    partitions). ``options`` add to or override the aiokafka arguments."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.broker,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        **{**kafka_client_options(settings), **options},
    )
