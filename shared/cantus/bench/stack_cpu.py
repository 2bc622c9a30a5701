"""CPU time of the running embedded stack by component, and of the machine, from /proc.

A benchmark on a shared machine measures the stack and whatever else runs. ``CpuSnapshot.
take(stack)`` records, for each component of the stack ``cantus up`` started (its process
group: the component, the programs it runs and those it has reaped), the CPU seconds used
so far, and the machine's busy CPU seconds; the difference of two snapshots says what each
component spent during the run and how much of the machine went to other work. Linux only;
elsewhere the snapshots are empty and the report leaves the table out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cantus.stack import Stack

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_groups() -> dict[int, float]:
    """CPU seconds (own and reaped children's) of every process group, by group id."""
    groups: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        group = int(fields[2])
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        groups[group] = groups.get(group, 0.0) + ticks / _CLOCK_TICKS
    return groups


def machine_busy_seconds() -> float:
    """CPU seconds the machine has spent busy (all but idle and iowait) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: per stack component, and the machine's busy time."""

    components: dict[str, float] = field(default_factory=dict)
    machine: float = 0.0

    @classmethod
    def take(cls, stack: Stack) -> CpuSnapshot:
        if not Path("/proc/stat").exists():
            return cls()
        groups = _process_groups()
        return cls(
            {name: groups.get(c.pid, 0.0) for name, c in stack.components().items()},
            machine_busy_seconds(),
        )

    def since(self, earlier: CpuSnapshot) -> CpuSnapshot:
        """What was spent between ``earlier`` and this snapshot."""
        return CpuSnapshot(
            {
                name: seconds - earlier.components.get(name, 0.0)
                for name, seconds in self.components.items()
            },
            self.machine - earlier.machine,
        )

    @property
    def stack_total(self) -> float:
        return sum(self.components.values())

    @property
    def elsewhere(self) -> float:
        """Busy CPU seconds of the machine outside the stack (other users, the client)."""
        return max(0.0, self.machine - self.stack_total)
