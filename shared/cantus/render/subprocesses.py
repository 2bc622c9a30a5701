"""Running the render's helper programs (ffmpeg, musicxml2ly, lilypond) and counting
what they cost.

``run_program`` runs one to the end, feeding ``stdin`` from a thread so that a large input
and a large output cannot deadlock, and reaps it with ``os.wait4`` to read that child's
own CPU time. The time is added to ``CHILD_CPU_SECONDS`` under the caller's label, so a
profile of the render (``cantus bench render --profile``) can charge each child to its
step even when several run at once, which the process-wide ``RUSAGE_CHILDREN`` cannot.
A long-lived child (the LilyPond server) reports its CPU time as it goes
(``program_cpu_seconds``, ``add_child_cpu``).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

CHILD_CPU_SECONDS: defaultdict[str, float] = defaultdict(float)
"""CPU seconds (user + system) of finished child programs, by label."""
_counter_lock = threading.Lock()


@dataclass(frozen=True)
class ProgramResult:
    """What a finished program returned: exit status, standard output and error."""

    returncode: int
    stdout: bytes
    stderr: bytes


class ProgramTimeout(RuntimeError):
    """The program ran past its time limit and was killed."""


def run_program(
    command: list[str],
    *,
    label: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
    timeout_s: float = 300.0,
) -> ProgramResult:
    """Run ``command`` with ``stdin`` as its input; its output, error and exit status.
    Raises ``ProgramTimeout`` after ``timeout_s`` seconds (the program is killed)."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    errors: list[bytes] = []

    def feed() -> None:
        try:
            if stdin:
                process.stdin.write(stdin)  # type: ignore[union-attr]
        except BrokenPipeError:  # it stopped reading: its status and stderr say why
            pass
        finally:
            process.stdin.close()  # type: ignore[union-attr]

    def drain_stderr() -> None:
        errors.append(process.stderr.read())  # type: ignore[union-attr]

    helpers = [threading.Thread(target=feed), threading.Thread(target=drain_stderr)]
    for helper in helpers:
        helper.daemon = True
        helper.start()
    timer = threading.Timer(timeout_s, process.kill)
    timer.start()
    try:
        output = process.stdout.read()  # type: ignore[union-attr]
        for helper in helpers:
            helper.join()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
        timed_out = not timer.is_alive()
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    add_child_cpu(label, usage.ru_utime + usage.ru_stime)
    if timed_out and process.returncode < 0:
        raise ProgramTimeout(f"{command[0]} took more than {timeout_s:g} s")
    return ProgramResult(process.returncode, output, errors[0] if errors else b"")


def add_child_cpu(label: str, seconds: float) -> None:
    """Count ``seconds`` of a child program's CPU time under ``label``."""
    with _counter_lock:
        CHILD_CPU_SECONDS[label] += seconds


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def program_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a running child has used so far, from /proc; None where
    that cannot be read (not Linux, or the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
