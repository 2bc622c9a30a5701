"""Which waiting piece a service works on next: its scarce steps (a melody decode, a segment's
synthesis) go through a ``PriorityGate`` with a few slots, and a freed slot goes to the most
pressing waiter.

Kafka hands a service its pieces in arrival order. At a busy moment that order made a new
station wait behind every other station's next pieces, which are not needed for a minute
(85 s to its first audio at 10 stations, against 8 s alone: docs/results/station_capacity.md).
A piece's ``PieceSpec.priority`` says how soon it is needed; the gate orders waiters by a due
time, arrival plus the priority's slack (earliest due first, as a deadline scheduler does),
so an urgent piece goes ahead of a background one that arrived up to ``SLACK_SECONDS``
earlier, and a background piece still goes before any piece that arrives after its slack has
run out: nothing waits for ever.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from cantus.v1 import events_pb2 as pb

SLACK_SECONDS: dict[int, float] = {
    pb.PRIORITY_URGENT: 0.0,
    pb.PRIORITY_NORMAL: 15.0,
    pb.PRIORITY_BACKGROUND: 60.0,
}
"""How long after its arrival a waiting piece of each priority is due. A station asks for a
background piece while it has at least its prebuffer (20 s) ahead and a piece in hand, so
the next is needed a minute or more later; a Compose caller is waiting, but is streamed bars
as they come."""


def priority_name(priority: int) -> str:
    return pb.Priority.Name(priority).removeprefix("PRIORITY_").lower()


class PriorityGate:
    """At most ``slots`` holders at once; a freed slot goes to the waiter due first.

    ``async with gate.slot(priority): ...`` in one event loop. A cancelled waiter leaves the
    queue; a cancelled holder frees its slot."""

    def __init__(self, slots: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.clock = clock
        self.holders = 0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, future in self._waiters if not future.done())

    @asynccontextmanager
    async def slot(self, priority: int = pb.PRIORITY_NORMAL) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self.holders < self.slots and not self.waiting:
            self.holders += 1
            return
        due = self.clock() + SLACK_SECONDS.get(priority, SLACK_SECONDS[pb.PRIORITY_NORMAL])
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (due, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # granted the slot as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the slot passes to it; holders stays the same
                return
        self.holders -= 1
