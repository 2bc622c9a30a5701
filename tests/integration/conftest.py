"""The real embedded stack for integration tests: broker, Triton and every service as its own
process, on ports and folders of the test session's own, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cantus.settings import Settings
from cantus.stack import Stack

PORT_BASE = 29000  # away from the defaults, so a developer's own `cantus up` does not clash


def stack_environment(state_dir: Path) -> dict[str, str]:
    return {
        "CANTUS_STATE_DIR": str(state_dir),
        "CANTUS_DATA_DIR": str(state_dir / "pieces"),
        "CANTUS_BROKER": f"127.0.0.1:{PORT_BASE + 92}",
        "CANTUS_BROKER_PORT": str(PORT_BASE + 92),
        "CANTUS_TRITON_GRPC": f"127.0.0.1:{PORT_BASE + 1}",
        "CANTUS_TRITON_HTTP_PORT": str(PORT_BASE + 0),
        "CANTUS_TRITON_GRPC_PORT": str(PORT_BASE + 1),
        "CANTUS_TRITON_METRICS_PORT": str(PORT_BASE + 2),
        "CANTUS_GATEWAY_PORT": str(PORT_BASE + 51),
        "CANTUS_GATEWAY_METRICS_PORT": str(PORT_BASE + 100),
        "CANTUS_SERVICE_WEB_PORTS": (
            f'{{"melody": {PORT_BASE + 101}, "harmony": {PORT_BASE + 102}, '
            f'"lyric": {PORT_BASE + 103}, "render": {PORT_BASE + 104}}}'
        ),
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
