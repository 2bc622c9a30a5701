"""`cantus up`'s supervisor (cantus.supervisor) with real child processes — tiny Python
programs that exit or get killed — and a clock the test moves: exit statuses are read and
logged, restarts back off by doubling up to a cap, a child that stays up resets the back-off,
and a crash loop is given up on with a message saying so."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from cantus.supervisor import RestartPolicy, Supervisor, describe_exit

EXITS_AT_ONCE = [sys.executable, "-c", "import sys; sys.exit(3)"]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Children:
    """Spawns ``command`` per name and remembers every process, to wait on and clean up."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.spawned: list[subprocess.Popen] = []

    def __call__(self, name: str) -> subprocess.Popen:
        process = subprocess.Popen(self.command)
        self.spawned.append(process)
        return process

    def wait_last(self) -> None:
        self.spawned[-1].wait(timeout=30)

    def close(self) -> None:
        for process in self.spawned:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.fixture
def records() -> list[dict]:
    return []


def make(children: Children, records: list[dict], clock: Clock, **policy) -> Supervisor:
    return Supervisor(
        children,
        policy=RestartPolicy(**policy),
        log=records.append,
        clock=clock,
        wall=clock,
    )


def test_back_off_doubles_up_to_its_cap():
    policy = RestartPolicy(initial_backoff_s=1.0, max_backoff_s=10.0)
    assert [policy.backoff_s(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_exit_statuses_read_as_people_say_them():
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL (signal 9)"


def test_a_killed_child_is_restarted_after_its_back_off_and_counted(records):
    clock = Clock()
    children = Children(SLEEPS)
    supervisor = make(children, records, clock, initial_backoff_s=2.0)
    try:
        supervisor.start("melody")
        children.spawned[0].send_signal(signal.SIGKILL)
        children.wait_last()
        supervisor.step()
        died = records[-1]
        assert died["event"] == "died" and died["component"] == "melody"
        assert died["exit"] == "killed by SIGKILL (signal 9)"
        assert died["restart_in_s"] == 2.0
        clock.now += 1.9
        supervisor.step()
        assert len(children.spawned) == 1  # not before its back-off
        clock.now += 0.2
        supervisor.step()
        assert len(children.spawned) == 2
        assert records[-1]["event"] == "restarted" and records[-1]["restarts"] == 1
        clock.now += 0.5
        supervisor.step()  # the probe says it serves: recovery time is death to healthy
        assert records[-1] == {"event": "healthy", "component": "melody", "recovery_s": 2.6}
        state = supervisor.snapshot()["melody"]
        assert state["restarts"] == 1 and state["pid"] == children.spawned[1].pid
        assert state["history"][0]["recovery_s"] == pytest.approx(2.6)
    finally:
        children.close()


def test_a_crash_loop_backs_off_longer_each_time_then_is_given_up(records):
    clock = Clock()
    children = Children(EXITS_AT_ONCE)
    supervisor = make(
        children, records, clock, initial_backoff_s=1.0, max_backoff_s=4.0, max_crash_loops=4
    )
    try:
        supervisor.start("render")
        waits = []
        for _ in range(10):
            children.wait_last()
            supervisor.step()
            if supervisor.given_up:
                break
            waits.append(records[-1]["restart_in_s"])
            assert records[-1]["exit"] == "exit code 3"
            clock.now += waits[-1]
            supervisor.step()
        assert waits == [1.0, 2.0, 4.0, 4.0]
        assert supervisor.given_up == ["render"]
        gave_up = records[-1]
        assert gave_up["event"] == "gave_up"
        assert gave_up["message"].startswith("giving up on render: it died 5 times in a row")
        assert "exit code 3" in gave_up["message"]
        spawned = len(children.spawned)
        clock.now += 100
        supervisor.step()
        assert len(children.spawned) == spawned  # given up: never started again
        assert supervisor.snapshot()["render"]["restarts"] == 4
    finally:
        children.close()


def test_a_child_that_stayed_up_starts_again_from_the_first_back_off(records):
    clock = Clock()
    children = Children(SLEEPS)
    supervisor = make(children, records, clock, initial_backoff_s=1.0, healthy_reset_s=60.0)
    try:
        supervisor.start("gateway")
        for expected in (1.0, 2.0):  # two quick crashes: the back-off doubles
            children.spawned[-1].kill()
            children.wait_last()
            supervisor.step()
            assert records[-1]["restart_in_s"] == expected
            clock.now += expected
            supervisor.step()
        clock.now += 61  # up for longer than healthy_reset_s
        supervisor.step()
        children.spawned[-1].kill()
        children.wait_last()
        supervisor.step()
        assert records[-1]["restart_in_s"] == 1.0
        assert records[-1]["crashes_in_a_row"] == 1
    finally:
        children.close()


def test_a_child_that_cannot_start_counts_as_a_crash(records):
    clock = Clock()
    calls = []

    def spawn(name: str) -> subprocess.Popen:
        calls.append(name)
        if len(calls) == 1:
            return subprocess.Popen(EXITS_AT_ONCE)
        raise OSError("no such program")

    supervisor = Supervisor(
        spawn, policy=RestartPolicy(), log=records.append, clock=clock, wall=clock
    )
    supervisor.start("lyric")
    supervisor.children["lyric"].process.wait(timeout=30)  # type: ignore[union-attr]
    supervisor.step()
    clock.now += 1.0
    supervisor.step()
    assert [r["event"] for r in records] == ["died", "spawn_failed", "died"]
    assert records[-1]["restart_in_s"] == 2.0
