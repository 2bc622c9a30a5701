"""Restart what dies, the way Kubernetes restarts a container: ``cantus up``'s supervisor.

``cantus up`` starts the broker and Triton itself, then starts this module as a process of its
own (``python -m cantus.supervisor``). That process starts the stream services and the gateway
as its children, so it is told how each one ends (exit code or signal), and it restarts a child
that dies: after a back-off that doubles per crash in a row (``initial_backoff_s`` … capped at
``max_backoff_s``), reset once a child has stayed up ``healthy_reset_s``. A child that dies
``max_crash_loops`` times in a row without staying up that long is given up on, with a message
that says so. Each restart is logged (JSON, one line each, in ``logs/supervisor.log``) and
counted; ``run/supervisor.json`` holds the counts and each restart's times (``cantus status``
and ``cantus bench chaos`` read it).

The broker and Triton are not supervised here: the broker's memory storage loses every topic
when it restarts, and a Triton restart is its own trial kind (#22).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

SUPERVISED = ("melody", "harmony", "lyric", "render", "station", "gateway")
"""What the supervisor starts and restarts: the stream services and the gateway."""


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a child that died, and when to stop trying (times in seconds)."""

    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    healthy_reset_s: float = 60.0
    max_crash_loops: int = 5

    def backoff_s(self, crashes_in_a_row: int) -> float:
        """Wait before restart number ``crashes_in_a_row`` (1 for the first crash): 1, 2, 4, …
        times ``initial_backoff_s``, at most ``max_backoff_s``."""
        return min(self.initial_backoff_s * 2 ** max(crashes_in_a_row - 1, 0), self.max_backoff_s)


def describe_exit(returncode: int) -> str:
    """How a child ended, for people: ``exit code 1`` or ``killed by SIGKILL (signal 9)``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"killed by {name} (signal {-returncode})"
    return f"exit code {returncode}"


@dataclass
class Restart:
    """One death and what followed it; times are Unix seconds, ``None`` until they happen."""

    name: str
    exit: str
    returncode: int
    died_at: float
    backoff_s: float
    restarted_at: float | None = None
    healthy_at: float | None = None

    @property
    def recovery_s(self) -> float | None:
        """Seconds from the death to the new child being healthy."""
        return None if self.healthy_at is None else self.healthy_at - self.died_at


@dataclass
class _Child:
    name: str
    process: subprocess.Popen | None
    started_at: float
    healthy: bool = True
    crashes_in_a_row: int = 0
    restarts: int = 0
    restart_due: float | None = None
    given_up: bool = False
    last_exit: str = ""
    history: list[Restart] = field(default_factory=list)


Spawn = Callable[[str], subprocess.Popen]
Probe = Callable[[str], bool]


class Supervisor:
    """Watches children started by ``spawn(name)``; ``step()`` does one round of checks.

    ``probe(name)`` says whether a restarted child is serving again (its recovery time ends
    there); ``log`` receives one dict per event. ``clock`` and ``wall`` are seams for tests.
    """

    def __init__(
        self,
        spawn: Spawn,
        *,
        policy: RestartPolicy | None = None,
        probe: Probe = lambda name: True,
        log: Callable[[dict], None] = lambda record: None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.spawn = spawn
        self.policy = policy or RestartPolicy()
        self.probe = probe
        self.log = log
        self.clock = clock
        self.wall = wall
        self.children: dict[str, _Child] = {}

    def adopt(self, name: str, process: subprocess.Popen) -> None:
        """Watch a child already started (and healthy)."""
        self.children[name] = _Child(name, process, self.clock())

    def start(self, name: str) -> None:
        self.adopt(name, self.spawn(name))

    @property
    def given_up(self) -> list[str]:
        return [c.name for c in self.children.values() if c.given_up]

    def step(self) -> None:
        now = self.clock()
        for child in self.children.values():
            if child.given_up:
                continue
            if child.process is not None:
                returncode = child.process.poll()
                if returncode is None:
                    self._check_health(child, now)
                    continue
                self._died(child, returncode, now)
            if child.restart_due is not None and now >= child.restart_due:
                self._restart(child, now)

    def _check_health(self, child: _Child, now: float) -> None:
        if not child.healthy and self.probe(child.name):
            child.healthy = True
            restart = child.history[-1]
            restart.healthy_at = self.wall()
            self.log(
                {
                    "event": "healthy",
                    "component": child.name,
                    "recovery_s": round(restart.recovery_s or 0.0, 3),
                }
            )
        if child.crashes_in_a_row and now - child.started_at >= self.policy.healthy_reset_s:
            child.crashes_in_a_row = 0  # stayed up: the next crash starts from the first back-off

    def _died(self, child: _Child, returncode: int, now: float) -> None:
        child.process = None
        child.last_exit = describe_exit(returncode)
        if now - child.started_at >= self.policy.healthy_reset_s:
            child.crashes_in_a_row = 0
        child.crashes_in_a_row += 1
        if child.crashes_in_a_row > self.policy.max_crash_loops:
            child.given_up = True
            self.log(
                {
                    "event": "gave_up",
                    "component": child.name,
                    "exit": child.last_exit,
                    "restarts": child.restarts,
                    "message": (
                        f"giving up on {child.name}: it died {child.crashes_in_a_row} times "
                        f"in a row, each within {self.policy.healthy_reset_s:g} s of starting "
                        f"(last: {child.last_exit}); see its log, then `cantus down` and "
                        "`cantus up`"
                    ),
                }
            )
            return
        backoff = self.policy.backoff_s(child.crashes_in_a_row)
        child.restart_due = now + backoff
        child.history.append(Restart(child.name, child.last_exit, returncode, self.wall(), backoff))
        self.log(
            {
                "event": "died",
                "component": child.name,
                "exit": child.last_exit,
                "returncode": returncode,
                "restart_in_s": backoff,
                "crashes_in_a_row": child.crashes_in_a_row,
            }
        )

    def _restart(self, child: _Child, now: float) -> None:
        child.restart_due = None
        try:
            child.process = self.spawn(child.name)
        except Exception as error:  # could not even start: counts as a crash
            self.log({"event": "spawn_failed", "component": child.name, "error": str(error)})
            child.started_at = now
            self._died(child, 127, now)
            return
        child.started_at = now
        child.healthy = False
        child.restarts += 1
        child.history[-1].restarted_at = self.wall()
        self.log(
            {
                "event": "restarted",
                "component": child.name,
                "pid": child.process.pid,
                "restarts": child.restarts,
                "after": child.last_exit,
            }
        )

    def snapshot(self) -> dict:
        """What ``run/supervisor.json`` holds: per child its pid, restarts and history."""
        return {
            name: {
                "pid": child.process.pid if child.process else None,
                "restarts": child.restarts,
                "crashes_in_a_row": child.crashes_in_a_row,
                "given_up": child.given_up,
                "last_exit": child.last_exit,
                "history": [{**asdict(r), "recovery_s": r.recovery_s} for r in child.history],
            }
            for name, child in self.children.items()
        }

    def run(self, stop: threading.Event, *, interval_s: float = 0.25, on_step=None) -> None:
        """Step until ``stop`` is set."""
        while not stop.is_set():
            self.step()
            if on_step is not None:
                on_step(self)
            stop.wait(interval_s)


# --- the `cantus up` process ---------------------------------------------------------------


def state_path(run_dir: Path) -> Path:
    return run_dir / "supervisor.json"


def write_state(run_dir: Path, state: dict) -> None:
    """Replace ``run/supervisor.json`` whole (readers never see half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(run_dir)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(state, indent=2))
    os.replace(temporary, path)


def read_state(run_dir: Path) -> dict | None:
    try:
        return json.loads(state_path(run_dir).read_text())
    except (OSError, ValueError):
        return None


def main() -> int:
    """Start the supervised components, say ``ready`` in ``run/supervisor.json``, then
    supervise until SIGTERM (``cantus down``). Children outlive this process: ``down`` stops
    them by their process groups."""
    from cantus.settings import load_settings
    from cantus.stack import Stack, StackError

    settings = load_settings()
    stack = Stack(settings)
    policy = RestartPolicy(
        initial_backoff_s=settings.supervisor_initial_backoff_s,
        max_backoff_s=settings.supervisor_max_backoff_s,
        healthy_reset_s=settings.supervisor_healthy_reset_s,
        max_crash_loops=settings.supervisor_max_crash_loops,
    )
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(settings.log_dir / "supervisor.log", "a", buffering=1)  # noqa: SIM115

    def log(record: dict) -> None:
        line = json.dumps({"time": time.time(), **record})
        log_file.write(line + "\n")
        if record["event"] == "gave_up":
            print(record["message"], file=sys.stderr, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    supervisor = Supervisor(
        lambda name: stack.launch(name)[1], policy=policy, probe=stack.healthy, log=log
    )
    state = {"state": "starting", "pid": os.getpid(), "error": ""}
    write_state(settings.run_dir, state)
    try:
        services = [name for name in SUPERVISED if name != "gateway"]
        for name, process in zip(services, stack.start_services_processes(services), strict=True):
            supervisor.adopt(name, process)
        supervisor.adopt("gateway", stack.start_gateway_process())
    except StackError as error:
        write_state(settings.run_dir, {**state, "state": "failed", "error": str(error)})
        return 1
    log({"event": "ready", "components": list(SUPERVISED)})

    written: list[dict] = []

    def save(current: Supervisor) -> None:
        now = {
            **state,
            "state": "ready",
            "policy": asdict(policy),
            "components": current.snapshot(),
        }
        if not written or written[-1] != now:  # write only what changed
            write_state(settings.run_dir, now)
            written[:] = [now]

    save(supervisor)
    supervisor.run(stop, on_step=save)
    log({"event": "stopped"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
