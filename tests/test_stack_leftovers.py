"""Stacks whose owner died (SIGKILL, an aborted CI run) are stopped at the next start (#22):
the real Tansu broker as the leftover, its owner a real process killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cantus.settings import Settings
from cantus.stack import (
    Stack,
    _group_alive,
    private_stack_environment,
    process_start_time,
    reap_leftovers,
)

OWNER = """
import os, sys, time
from cantus.settings import Settings
from cantus.stack import Stack
stack = Stack(Settings(), owner=os.getpid())
stack.start_broker()
print(stack.components()["broker"].pid, flush=True)
time.sleep(600)
"""


def _environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **private_stack_environment(tmp_path / "state"),
        "CANTUS_STACK_REGISTRY": str(tmp_path / "registry"),
    }


def _wait_gone(pgid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


def test_a_broker_left_by_a_killed_owner_is_stopped_at_the_next_start(tmp_path: Path):
    env = _environment(tmp_path)
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], env=env, stdout=subprocess.PIPE, text=True
    )
    broker = None
    try:
        assert owner.stdout is not None
        broker = int(owner.stdout.readline())
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        assert _group_alive(broker), "the broker should outlive its SIGKILLed owner (the leak)"
        entries = list((tmp_path / "registry").glob("*.json"))
        assert len(entries) == 1
        assert json.loads(entries[0].read_text())["components"]["broker"]["pid"] == broker

        reaped = reap_leftovers(tmp_path / "registry")

        assert [r.stopped for r in reaped] == [["broker"]]
        assert reaped[0].owner_pid == owner.pid
        assert _wait_gone(broker)
        assert not list((tmp_path / "registry").glob("*.json"))
        assert not (tmp_path / "state" / "run" / "stack.json").exists()
    finally:
        if owner.poll() is None:
            owner.kill()
        if broker is not None and _group_alive(broker):
            os.killpg(broker, signal.SIGKILL)


def test_the_stack_of_a_living_owner_is_left_alone(tmp_path: Path, monkeypatch):
    for name, value in _environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    stack = Stack(Settings(), owner=os.getpid())
    try:
        broker = stack.start_broker()
        assert broker.started == process_start_time(broker.pid)
        assert reap_leftovers(tmp_path / "registry") == []
        assert _group_alive(broker.pid)
        assert stack.registry_file.exists()
    finally:
        assert stack.down() == ["broker"]
    assert not stack.registry_file.exists(), "down forgets the stack in the registry"


def test_a_recorded_pid_now_another_process_s_is_not_killed(tmp_path: Path):
    """A pid recorded for a component of a dead owner's stack but held by another process
    (started later) is that process's: reaping must not touch it."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        registry = tmp_path / "registry"
        registry.mkdir()
        started = process_start_time(stranger.pid)
        assert started is not None
        record = {
            "owner": {"pid": finished.pid, "started": 1},
            "state_dir": str(tmp_path / "state"),
            "components": {
                "triton": {"pid": stranger.pid, "address": "", "log": "", "started": started - 1}
            },
        }
        (registry / "dead.json").write_text(json.dumps(record))

        reaped = reap_leftovers(registry)

        assert [r.stopped for r in reaped] == [[]]
        assert stranger.poll() is None, "a process that is not the recorded one was killed"
        assert not (registry / "dead.json").exists()
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("storage", ["postgres://localhost", "s3://", "file:///tmp"])
def test_an_unknown_broker_storage_is_refused_naming_the_field(storage: str):
    with pytest.raises(ValueError, match="broker_storage"):
        Settings(broker_storage=storage)
