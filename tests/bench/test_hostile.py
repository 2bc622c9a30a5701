"""Hostile input through the gateway's gRPC and HTTP sides (#22): the lean CI part of
``cantus bench chaos --scenario hostile``. The gateway's own servicers and web side run on
loopback (cantus.bench.hostile.in_process_gateway); nothing an invalid request sends may reach
its producer."""

from __future__ import annotations

import math
import time

import pytest

from cantus.bench.hostile import (
    KNOWN_PIECE,
    KNOWN_STATION,
    Case,
    HostileReport,
    format_section,
    generate,
    in_process_gateway,
    run_cases,
    send_grpc,
    send_http,
)
from cantus.settings import Settings
from cantus.v1 import composer_pb2 as api
from cantus.v1 import station_pb2 as st


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("hostile"))
    with in_process_gateway(settings) as served:
        yield served


def _answered_by_aiohttp(outcome) -> bool:
    """aiohttp answers before any handler: a header or request line over 8190 bytes (400,
    naming the limit) and a path no route matches, such as a piece id holding a slash (404).
    Rejected, but without a field's name."""
    too_long = outcome.status == "400" and "Got more than 8190 bytes" in outcome.detail
    return too_long or (outcome.status == "404" and outcome.detail == "404: Not Found")


def test_a_seeded_sample_of_hostile_requests_is_rejected_naming_each_field(gateway) -> None:
    address, http_port, producer = gateway
    cases = generate(300, seed=22, max_bars=Settings().max_bars, channels=("grpc", "http"))
    assert {c.channel for c in cases} == {"grpc", "http"}
    assert len({c.target for c in cases}) >= 12
    outcomes = run_cases(cases, grpc_address=address, http_port=http_port)
    assert len(outcomes) == 300
    assert [o for o in outcomes if o.crashed] == []
    assert [o for o in outcomes if o.accepted] == []
    assert all(o.rejected for o in outcomes)
    unnamed = [o for o in outcomes if not o.names_field and not _answered_by_aiohttp(o)]
    assert unnamed == [], [(o.case.target, o.case.field, o.status, o.detail) for o in unnamed]
    assert producer.sent == []
    report = format_section(HostileReport(22, outcomes, 1.0, "here"), command="test")
    assert "| **all** | 300 | 300 |" in report


# Each found by the bench, each fixed: the rejection now names the field (or exists at all).
GRPC_DEFECTS = [
    # a 1 MB value echoed in the status: a bare RESOURCE_EXHAUSTED, no field
    Case("grpc", "Compose", "palette", "oversized", api.ComposeRequest(palette="x" * 1_000_000)),
    Case("grpc", "Compose", "form", "oversized", api.ComposeRequest(form="é" * 100_000)),
    # named "name", the field is plan_name
    Case("grpc", "PlanSession", "plan_name", "malformed", st.PlanRequest(plan_name="a" * 41)),
    # a RecursionError: UNKNOWN
    Case(
        "grpc",
        "PlanSession",
        "session_yaml",
        "deep nesting",
        st.PlanRequest(preset="relax", minutes=10, session_yaml="a: " + "[" * 5000 + "]" * 5000),
    ),
    # NaN weight and a 2 MB config were taken and sent to the station service
    Case(
        "grpc",
        "StartStation",
        "config_yaml",
        "nan weight",
        st.StartStationRequest(name="radio-x", config_yaml="styles: {folk: .nan}\n"),
    ),
    Case(
        "grpc",
        "StartStation",
        "config_yaml",
        "oversized",
        st.StartStationRequest(name="radio-x", config_yaml="# " + "x" * 2_000_000),
    ),
    # named "name", the field is station
    Case(
        "grpc",
        "SendFeedback",
        "station",
        "unknown",
        st.StationFeedback(station="nowhere", piece_id=KNOWN_PIECE, kind="like"),
    ),
    Case(
        "grpc",
        "SendSignals",
        "signals[0].station",
        "unknown",
        [
            st.ListenerSignal(
                station="nowhere", measured_unix_ns=time.time_ns(), kind=st.HEART_RATE, value=70
            )
        ],
    ),
    Case(
        "grpc",
        "PlanSession",
        "minutes",
        "not a number",
        st.PlanRequest(
            start=st.ListenerState(tempo_bpm=90, energy=0.5, valence=0.5),
            target=st.ListenerState(tempo_bpm=70, energy=0.3, valence=0.5),
            minutes=math.nan,
        ),
    ),
]

HTTP_DEFECTS = [
    # "query: could not convert string to float"
    Case(
        "http", "compose", "tempo", "text", ("GET", "/compose/events", {"tempo": "abc"}, None, {})
    ),
    Case(
        "http", "compose", "bars", "negative", ("GET", "/compose/events", {"bars": "-1"}, None, {})
    ),
    Case(
        "http",
        "compose",
        "seed",
        "huge",
        ("GET", "/compose/events", {"seed": str(2**64)}, None, {}),
    ),
    # 'expected {"piece_id": …}' naming nothing
    Case(
        "http",
        "feedback",
        "body",
        "not JSON",
        ("POST", f"/stations/{KNOWN_STATION}/feedback", {}, b"{{", {}),
    ),
    Case(
        "http",
        "feedback",
        "kind",
        "missing",
        ("POST", f"/stations/{KNOWN_STATION}/feedback", {}, b'{"piece_id": "x"}', {}),
    ),
    # "no station 'x'", "bad file name", "piece … is not finished"
    Case(
        "http", "playlist", "name", "unknown", ("GET", "/stations/nowhere/live.m3u8", {}, None, {})
    ),
    Case(
        "http", "file", "file", "bad name", ("GET", f"/pieces/{KNOWN_PIECE}/.hidden", {}, None, {})
    ),
    Case(
        "http",
        "file",
        "file",
        "not stored",
        ("GET", f"/pieces/{KNOWN_PIECE}/piece.exe", {}, None, {}),
    ),
    Case(
        "http",
        "file",
        "piece_id",
        "unknown",
        ("GET", f"/pieces/{'cd' * 16}/piece.json", {}, None, {}),
    ),
]


@pytest.mark.parametrize("case", GRPC_DEFECTS, ids=lambda c: f"{c.target}-{c.field}-{c.label}")
def test_grpc_defects_found_by_the_bench_are_rejected_naming_the_field(gateway, case) -> None:
    import grpc

    from cantus.bench.hostile import MESSAGE_BYTES

    address, _, producer = gateway
    options = [("grpc.max_send_message_length", MESSAGE_BYTES)]
    with grpc.insecure_channel(address, options=options) as channel:
        outcome = send_grpc(channel, case)
    assert outcome.rejected and outcome.names_field, (outcome.status, outcome.detail)
    assert outcome.detail.startswith(case.field)
    assert producer.sent == []


@pytest.mark.parametrize("case", HTTP_DEFECTS, ids=lambda c: f"{c.target}-{c.field}-{c.label}")
def test_http_defects_found_by_the_bench_are_rejected_naming_the_field(gateway, case) -> None:
    _, http_port, _ = gateway
    outcome = send_http("127.0.0.1", http_port, case)
    assert outcome.rejected, (outcome.status, outcome.detail)
    assert outcome.detail.startswith(f"{case.field}:"), outcome.detail
