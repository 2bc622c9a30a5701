"""The real embedded stack for integration tests: broker, Triton and every service as its own
process, on ports and folders of the test session's own, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cantus.settings import Settings
from cantus.stack import Stack, private_stack_environment


def stack_environment(state_dir: Path) -> dict[str, str]:
    return {**private_stack_environment(state_dir), "CANTUS_MAX_BARS": "64"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("cantus-stack")
    saved = dict(os.environ)
    os.environ.update(stack_environment(state_dir))
    # owned by this session: a run killed with SIGKILL has its stack stopped at the next start
    running = Stack(Settings(), owner=os.getpid())
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
