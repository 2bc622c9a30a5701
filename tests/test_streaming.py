"""The offset guard: records a Faust consumer skipped are read again."""

import asyncio
import logging
from types import SimpleNamespace

from cantus.streaming import _OffsetGuard


class FakeConsumer:
    def __init__(self, committed: dict) -> None:
        self._committed_offset = committed
        self.seeks: list[tuple[str, int]] = []

    async def seek(self, tp, offset: int) -> None:
        self.seeks.append((tp, offset))


def deliver(guard: _OffsetGuard, offsets: list[int], tp: str = "t-0") -> list[int]:
    processed = []
    for offset in offsets:
        message = SimpleNamespace(tp=tp, offset=offset)
        if not asyncio.run(guard.skipped_before(message)):
            processed.append(offset)
    return processed


def make_guard(committed: dict) -> tuple[_OffsetGuard, FakeConsumer]:
    consumer = FakeConsumer(committed)
    return _OffsetGuard(SimpleNamespace(consumer=consumer), logging.getLogger("test")), consumer


def test_contiguous_offsets_pass():
    guard, consumer = make_guard({"t-0": 10})
    assert deliver(guard, [10, 11, 12]) == [10, 11, 12]
    assert consumer.seeks == []


def test_a_hole_is_read_again_and_buffered_records_are_skipped_until_it_is_filled():
    guard, consumer = make_guard({"t-0": 10})
    # 10 arrives, 11-14 are dropped by the consumer, 15-16 arrive, then the seek re-delivers.
    assert deliver(guard, [10, 15, 16, 11, 12, 13, 14, 15, 16]) == [10, 11, 12, 13, 14, 15, 16]
    assert consumer.seeks == [("t-0", 11)]


def test_a_hole_before_the_first_record_is_found_from_the_committed_offset():
    guard, consumer = make_guard({"t-0": 4})
    assert deliver(guard, [6, 4, 5, 6]) == [4, 5, 6]
    assert consumer.seeks == [("t-0", 4)]


def test_a_hole_that_never_fills_is_accepted_after_a_few_tries():
    guard, consumer = make_guard({})
    assert deliver(guard, [1, 5]) == [1]
    guard._rewinding.clear()  # the seek "completed" but 2..4 did not come back
    assert deliver(guard, [5]) == []
    guard._rewinding.clear()
    assert deliver(guard, [5]) == []
    guard._rewinding.clear()
    assert deliver(guard, [5]) == [5]
    assert len(consumer.seeks) == 3
