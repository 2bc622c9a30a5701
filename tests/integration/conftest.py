"""The real embedded stack for integration tests: broker, Triton and every service as its own
process, on ports and folders of the test session's own, started once per session."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cantus.settings import Settings
from cantus.stack import STREAM_SERVICES, Stack


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, so test stacks never clash with a developer's own
    `cantus up` or with another test run on the same machine."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stack_environment(state_dir: Path) -> dict[str, str]:
    broker, http, grpc, metrics, gateway, gateway_metrics, gateway_http, *web = free_ports(
        7 + len(STREAM_SERVICES)
    )
    return {
        "CANTUS_STATE_DIR": str(state_dir),
        "CANTUS_DATA_DIR": str(state_dir / "pieces"),
        "CANTUS_BROKER": f"127.0.0.1:{broker}",
        "CANTUS_TRITON_GRPC": f"127.0.0.1:{grpc}",
        "CANTUS_TRITON_HTTP_PORT": str(http),
        "CANTUS_TRITON_METRICS_PORT": str(metrics),
        "CANTUS_GATEWAY_PORT": str(gateway),
        "CANTUS_GATEWAY_METRICS_PORT": str(gateway_metrics),
        "CANTUS_GATEWAY_HTTP_PORT": str(gateway_http),
        "CANTUS_SERVICE_WEB_PORTS": json.dumps(dict(zip(STREAM_SERVICES, web, strict=True))),
        "CANTUS_PARTITIONS": "2",
        "CANTUS_MAX_BARS": "64",
        "CANTUS_SEGMENT_BARS": "4",
    }


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("cantus-stack")
    saved = dict(os.environ)
    os.environ.update(stack_environment(state_dir))
    running = Stack(Settings())
    try:
        running.up()
        yield running
    finally:
        pids = [component.pid for component in running.components().values()]
        running.down()
        os.environ.clear()
        os.environ.update(saved)
        orphans = [pid for pid in pids if _group_alive(pid)]
        assert not orphans, f"process groups left running after down: {orphans}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def gateway_address(stack: Stack) -> str:
    return f"{stack.settings.host}:{stack.settings.gateway_port}"
