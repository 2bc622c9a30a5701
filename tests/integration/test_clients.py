"""The CI part of ``cantus bench chaos --scenario hostile,clients`` (#22), kept lean: on a
private stack, 200 hostile cases through the gateway and the broker (every one rejected
naming its field, every poison record dead-lettered, no crash), a client that hangs up after
the first bar (its piece is stored whole), a slow reader beside a fast one, an 80 MiB piece
fetched in chunks, and 12 Compose calls at once past an in-flight limit of 4."""

from __future__ import annotations

import pytest

from cantus.bench.clients import run_scenarios

pytestmark = pytest.mark.integration


def test_misbehaving_clients_a_burst_and_hostile_input_lose_nothing():
    clients, hostile = run_scenarios(
        ("hostile", "clients"),
        seed=5,
        bars=4,
        burst_calls=12,
        large_mb=80,
        slow_read_s=0.5,
        hostile_cases=200,
        max_in_flight=4,
    )
    assert hostile is not None and clients is not None
    assert len(hostile.outcomes) == 200
    assert {o.case.channel for o in hostile.outcomes} == {"grpc", "http", "kafka"}
    assert [o for o in hostile.outcomes if o.crashed or o.accepted] == []
    kafka = [o for o in hostile.outcomes if o.case.channel == "kafka"]
    assert all(o.rejected for o in kafka), [(o.case.target, o.status) for o in kafka]
    assert clients.failures == []
    assert set(clients.lines) == {"disconnect", "slow reader", "large piece", "burst"}
    assert "refused 8 with RESOURCE_EXHAUSTED (8 with a retry hint" in clients.lines["burst"][1]
