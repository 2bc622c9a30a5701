"""The priority gate: slots bound the holders, a freed slot goes to the waiter due first, and
a piece waits at most its priority's slack behind later arrivals."""

from __future__ import annotations

import asyncio

import pytest

from cantus.scheduling import SLACK_SECONDS, PriorityGate, priority_name
from cantus.v1 import events_pb2 as pb


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _hold(gate: PriorityGate, name: str, priority: int, order: list[str], go: asyncio.Event):
    async with gate.slot(priority):
        order.append(name)
        await go.wait()


def test_slots_bound_the_holders_and_urgent_goes_first():
    async def scenario() -> list[str]:
        clock = FakeClock()
        gate = PriorityGate(1, clock=clock)
        go = asyncio.Event()
        order: list[str] = []
        tasks = [asyncio.create_task(_hold(gate, "first", pb.PRIORITY_NORMAL, order, go))]
        await asyncio.sleep(0)
        for name, priority in [
            ("background", pb.PRIORITY_BACKGROUND),
            ("normal", pb.PRIORITY_NORMAL),
            ("urgent", pb.PRIORITY_URGENT),
        ]:
            clock.now += 1.0
            tasks.append(asyncio.create_task(_hold(gate, name, priority, order, go)))
            await asyncio.sleep(0)
        assert order == ["first"] and gate.holders == 1 and gate.waiting == 3
        go.set()
        await asyncio.gather(*tasks)
        assert gate.holders == 0 and gate.waiting == 0
        return order

    assert asyncio.run(scenario()) == ["first", "urgent", "normal", "background"]


def test_a_background_piece_is_not_passed_by_pieces_arriving_after_its_slack():
    async def scenario() -> list[str]:
        clock = FakeClock()
        gate = PriorityGate(1, clock=clock)
        go = asyncio.Event()
        order: list[str] = []
        tasks = [asyncio.create_task(_hold(gate, "holder", pb.PRIORITY_NORMAL, order, go))]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_hold(gate, "old", pb.PRIORITY_BACKGROUND, order, go)))
        await asyncio.sleep(0)
        clock.now += SLACK_SECONDS[pb.PRIORITY_BACKGROUND] + 1.0
        tasks.append(asyncio.create_task(_hold(gate, "late", pb.PRIORITY_URGENT, order, go)))
        await asyncio.sleep(0)
        go.set()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["holder", "old", "late"]


def test_equal_priorities_keep_arrival_order_and_several_slots_fill():
    async def scenario() -> list[str]:
        gate = PriorityGate(2, clock=FakeClock())
        go = asyncio.Event()
        order: list[str] = []
        tasks = []
        for name in "abcde":
            tasks.append(asyncio.create_task(_hold(gate, name, pb.PRIORITY_NORMAL, order, go)))
            await asyncio.sleep(0)
        assert gate.holders == 2 and gate.waiting == 3
        go.set()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == list("abcde")


def test_a_cancelled_waiter_leaves_and_a_failing_holder_frees_its_slot():
    async def scenario() -> None:
        gate = PriorityGate(1, clock=FakeClock())
        go = asyncio.Event()
        order: list[str] = []
        holder = asyncio.create_task(_hold(gate, "holder", pb.PRIORITY_NORMAL, order, go))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(_hold(gate, "gone", pb.PRIORITY_URGENT, order, go))
        after = asyncio.create_task(_hold(gate, "after", pb.PRIORITY_NORMAL, order, go))
        await asyncio.sleep(0)
        cancelled.cancel()
        go.set()
        await holder
        await after
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert order == ["holder", "after"] and gate.holders == 0

        async def fail() -> None:
            async with gate.slot(pb.PRIORITY_URGENT):
                raise RuntimeError("bad piece")

        with pytest.raises(RuntimeError):
            await fail()
        assert gate.holders == 0

    asyncio.run(scenario())


def test_priority_names_and_slots_are_checked():
    assert priority_name(pb.PRIORITY_URGENT) == "urgent"
    with pytest.raises(ValueError):
        PriorityGate(0)
