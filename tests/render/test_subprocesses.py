"""Helper programs run to the end with large input and output, report their own CPU time
under their label, and are killed past their time."""

from __future__ import annotations

import sys

import pytest

from cantus.render.subprocesses import (
    CHILD_CPU_SECONDS,
    ProgramTimeout,
    program_cpu_seconds,
    run_program,
)


def test_large_input_and_output_do_not_deadlock():
    data = bytes(range(256)) * 40_000  # 10 MB through a pipe each way
    done = run_program(["cat"], label="test cat", stdin=data)
    assert done.returncode == 0 and done.stdout == data


def test_cpu_time_is_counted_under_the_label():
    before = CHILD_CPU_SECONDS["test busy"]
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    done = run_program([sys.executable, "-c", busy], label="test busy")
    assert done.returncode == 0
    assert CHILD_CPU_SECONDS["test busy"] - before >= 0.25


def test_errors_and_status_come_back():
    done = run_program(
        [sys.executable, "-c", "import sys; sys.stderr.write('no'); sys.exit(3)"], label="test"
    )
    assert (done.returncode, done.stderr) == (3, b"no")


def test_a_program_past_its_time_is_killed():
    with pytest.raises(ProgramTimeout, match=r"more than 0\.5 s"):
        run_program(["sleep", "30"], label="test sleep", timeout_s=0.5)


def test_cpu_of_a_running_program_is_read_from_proc():
    import os

    assert program_cpu_seconds(os.getpid()) is not None or sys.platform != "linux"
    assert program_cpu_seconds(2**22 + 12345) is None
