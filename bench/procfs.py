"""What Linux's /proc says of processes and of the machine's CPUs: the benches'
CPU meters read their figures here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """What /proc/PID/stat says of one process."""

    pid: int
    parent_pid: int
    cpu_s: float  # its own user and system time
    cpu_s_with_reaped: float  # and that of its children it has reaped


def process_stat(pid: int) -> ProcessStat | None:
    """/proc/PID/stat read, or None if the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After "(comm)": state, ppid, ..., utime, stime, cutime, cstime (11 to 14).
    own = (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    reaped = (int(fields[13]) + int(fields[14])) / TICKS_PER_S
    return ProcessStat(pid, int(fields[1]), own, own + reaped)


def process_stats() -> Iterator[ProcessStat]:
    """Every process's, but those that end while they are read."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            process = process_stat(int(entry.name))
            if process is not None:
                yield process


def machine_busy_s() -> float:
    """Busy time of all CPUs: not idle, not waiting on I/O, not stolen by the host."""
    with open("/proc/stat") as file:
        user, nice, system, _, _, irq, softirq, *_ = map(int, file.readline().split()[1:])
    return (user + nice + system + irq + softirq) / TICKS_PER_S
