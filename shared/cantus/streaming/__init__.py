"""Stream services on Faust and Kafka: ``StreamService`` (``service``) runs a handler over
its input topics with at-least-once delivery; ``transport``, ``offsets`` and
``observability`` hold the parts it is built from."""

from cantus.streaming.observability import configure_logging
from cantus.streaming.offsets import OffsetGuard
from cantus.streaming.service import Handler, Received, Record, StreamService

__all__ = ["Handler", "OffsetGuard", "Received", "Record", "StreamService", "configure_logging"]
