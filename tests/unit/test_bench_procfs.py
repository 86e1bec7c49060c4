"""The benches' reading of /proc (bench/procfs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.procfs import machine_busy_s, process_stat, process_stats

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")


def _burn_cpu_s(seconds: float) -> None:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


def test_a_process_reads_its_own_parent_and_cpu_time_as_it_grows() -> None:
    before = process_stat(os.getpid())
    _burn_cpu_s(0.2)
    after = process_stat(os.getpid())

    assert before is not None
    assert after is not None
    assert (after.pid, after.parent_pid) == (os.getpid(), os.getppid())
    assert after.cpu_s - before.cpu_s >= 0.1
    assert after.cpu_s_with_reaped >= after.cpu_s


def test_a_reaped_child_counts_in_its_parent_and_a_gone_process_reads_as_none() -> None:
    before = process_stat(os.getpid())
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass\nimport os; print(os.getpid())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = process_stat(os.getpid())

    assert before is not None
    assert after is not None
    reaped_s = (after.cpu_s_with_reaped - after.cpu_s) - (before.cpu_s_with_reaped - before.cpu_s)
    assert reaped_s >= 0.2
    assert process_stat(int(child.stdout)) is None


def test_every_process_is_listed_and_the_machine_was_busy() -> None:
    busy_before = machine_busy_s()
    _burn_cpu_s(0.2)

    assert os.getpid() in {process.pid for process in process_stats()}
    assert machine_busy_s() - busy_before >= 0.1
