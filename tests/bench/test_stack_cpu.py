"""CPU snapshots of the stack: a component's process group is charged with what it spends,
and the machine's busy time covers it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cantus.bench.stack_cpu import CpuSnapshot
from cantus.stack import Component

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")


def test_a_components_cpu_is_counted_with_its_reaped_children():
    me = Component("bench", os.getpgrp(), "-", Path("-"))
    stack = SimpleNamespace(components=lambda: {"bench": me})
    before = CpuSnapshot.take(stack)
    started = time.process_time()
    while time.process_time() - started < 0.3:
        pass
    child = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass"
    os.spawnv(os.P_WAIT, sys.executable, [sys.executable, "-c", child])
    spent = CpuSnapshot.take(stack).since(before)
    assert spent.components["bench"] >= 0.45  # its own 0.3 s and the reaped child's 0.2 s
    assert spent.machine >= spent.components["bench"] - 0.05
    assert spent.elsewhere >= 0.0
