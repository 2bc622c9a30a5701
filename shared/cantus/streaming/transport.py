"""Faust's Kafka transport, tuned for a stream that should move bar by bar: a short fetch
wait, and a consumer that remembers where each partition assignment began (for
``cantus.streaming.offsets.OffsetGuard``)."""

from __future__ import annotations

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer with ``fetch_max_wait_ms`` from settings instead of its fixed 1,500 ms.

    Tansu (the embedded broker) answers a fetch only when that wait expires, so the fixed
    value would add most of a second to every hop of a stream that should move bar by bar.
    """

    fetch_max_wait_ms = 20

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms  # read by aiokafka at start()
        return consumer


class TunedConsumer(faust_aiokafka.Consumer):
    """Faust's consumer with the tuned thread, remembering where each assignment began.

    ``committed_at_assignment``: the committed offset of each partition that Faust sought to
    after its last assignment (``seek_to_committed``, part of Faust's consumer API), where
    ``OffsetGuard`` starts counting."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.committed_at_assignment: dict[object, int] = {}

    def _new_consumer_thread(self):
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self):
        committed = await super().seek_to_committed()
        self.committed_at_assignment.update(
            {
                tp: offset
                for tp, offset in committed.items()
                if isinstance(offset, int) and offset >= 0
            }
        )
        return committed


class TunedTransport(faust_aiokafka.Transport):
    Consumer = TunedConsumer


class CantusApp(faust.App):
    def _new_transport(self):
        return TunedTransport(self.conf.broker_consumer, self)
