"""Offsets a Faust consumer skipped: noticed, so the records can be read again."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

STALL_SECONDS = 2.0
"""How long records may wait undelivered on an idle partition before it is sought back."""

P = TypeVar("P", bound=Hashable)
"""A partition (Faust's ``TP``; any hashable key in tests)."""


class OffsetGuard(Generic[P]):
    """Notices records a Faust consumer skipped, so they can be read again.

    faust-streaming can drop part of a fetched batch while it resumes after a rebalance
    (``Consumer.getmany`` stops yielding when the flow pauses, after the broker position has
    moved on) and then books the hole as a gap of acknowledged offsets: after a restart,
    bars vanished. We keep the next offset expected per partition — first the committed
    offset, then one past what was processed — and report a jump. Cantus topics are neither
    compacted nor transactional, so their offsets are contiguous.
    """

    def __init__(self, committed: Callable[[P], int | None]) -> None:
        self._committed = committed
        self._next: dict[P, int] = {}
        self._seen_at: dict[P, float] = {}
        self._in_flight: dict[P, int] = {}

    def reset(self) -> None:
        """Forget positions (partitions moved in a rebalance)."""
        self._next.clear()
        self._seen_at.clear()

    def begin(self, tp: P) -> None:
        self._in_flight[tp] = self._in_flight.get(tp, 0) + 1
        self._seen_at[tp] = time.monotonic()

    def end(self, tp: P) -> None:
        self._in_flight[tp] -= 1
        self._seen_at[tp] = time.monotonic()

    def touch(self, tp: P) -> None:
        self._seen_at[tp] = time.monotonic()

    def stalled(
        self, tps: list[P], highwater: Callable[[P], int | None], *, idle_s: float
    ) -> list[tuple[P, int]]:
        """Partitions where records wait beyond the next expected offset (the highwater mark
        says so) yet nothing has been delivered for ``idle_s`` seconds and nothing is being
        handled: the tail of a batch was dropped. (tp, offset to read from) each."""
        now = time.monotonic()
        found = []
        for tp in tps:
            expected = self._next.get(tp)
            if expected is None:
                expected = self._committed(tp)
            mark = highwater(tp)
            if expected is None or mark is None or mark <= expected:
                continue
            if self._in_flight.get(tp, 0):
                continue
            if now - self._seen_at.setdefault(tp, now) >= idle_s:
                found.append((tp, expected))
        return found

    def take(self, tp: P, offset: int) -> tuple[int, int] | None:
        """Record ``offset`` as processed; returns the skipped range ``[start, offset)`` if
        records before it never arrived."""
        expected = self._next.get(tp)
        if expected is None:
            expected = self._committed(tp)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        if expected is not None and 0 <= expected < offset:
            return expected, offset
        return None
