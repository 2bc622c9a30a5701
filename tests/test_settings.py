"""Settings: one address per component, from which the embedded stack takes its ports."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from cantus.settings import (
    PIECES_IN_FLIGHT_PER_CORE,
    S3_FETCH_MAX_WAIT_MS,
    Settings,
    pieces_in_flight_for_cores,
)


def test_the_embedded_ports_come_from_the_addresses_clients_use(monkeypatch) -> None:
    monkeypatch.setenv("CANTUS_BROKER", "127.0.0.1:20001,127.0.0.1:20002")
    monkeypatch.setenv("CANTUS_TRITON_GRPC", "127.0.0.1:20003")
    settings = Settings()
    assert (settings.broker_port, settings.triton_grpc_port) == (20001, 20003)


def test_a_port_cannot_be_set_apart_from_its_address() -> None:
    with pytest.raises(ValidationError):
        Settings(broker_port=1234)


def test_addresses_need_a_port() -> None:
    with pytest.raises(ValidationError, match="is not host:port"):
        Settings(triton_grpc="localhost")


def test_the_in_flight_limit_is_sized_to_the_machine_unless_set(monkeypatch) -> None:
    monkeypatch.delenv("CANTUS_GATEWAY_MAX_PIECES_IN_FLIGHT", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert Settings().gateway_max_pieces_in_flight == PIECES_IN_FLIGHT_PER_CORE * cores
    assert pieces_in_flight_for_cores(2) == 8  # the 2-core machine it was measured on
    assert Settings(gateway_max_pieces_in_flight=3).gateway_max_pieces_in_flight == 3
    with pytest.raises(ValidationError, match="gateway_max_pieces_in_flight"):
        Settings(gateway_max_pieces_in_flight=-1)


def test_the_fetch_wait_is_longer_on_s3_storage_unless_set(monkeypatch) -> None:
    # on S3, Tansu's one wait per fetch must cover the store's round trips for every
    # partition of the request (the local-s3 stall, #22); memory:// keeps the short hop
    monkeypatch.delenv("CANTUS_KAFKA_FETCH_MAX_WAIT_MS", raising=False)
    monkeypatch.delenv("CANTUS_BROKER_STORAGE", raising=False)
    assert Settings().kafka_fetch_max_wait_ms == 100
    for storage in ("local-s3", "s3://bucket/"):
        assert Settings(broker_storage=storage).kafka_fetch_max_wait_ms == S3_FETCH_MAX_WAIT_MS
    monkeypatch.setenv("CANTUS_BROKER_STORAGE", "local-s3")
    assert Settings().kafka_fetch_max_wait_ms == S3_FETCH_MAX_WAIT_MS
    monkeypatch.setenv("CANTUS_KAFKA_FETCH_MAX_WAIT_MS", "50")
    assert Settings().kafka_fetch_max_wait_ms == 50  # an explicit value is kept
