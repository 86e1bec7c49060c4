"""The audit benchmark's CPU figures: it finds the database server's processes when
the server runs on this machine, and counts their CPU time over a timed window."""

from __future__ import annotations

import asyncpg

from bench.audit_bench import CpuMeter, local_server_pid

# Enough work for the server to show it in /proc (counted in 10 ms ticks).
SERVER_WORK = "SELECT count(*) FROM generate_series(1, 5000000)"


async def test_the_bench_meters_the_local_database_servers_cpu(pool: asyncpg.Pool) -> None:
    address = await pool.fetchval("SELECT host(inet_server_addr())")
    server_pid = await local_server_pid(pool)
    if address not in (None, "127.0.0.1", "::1"):
        assert server_pid is None  # another machine's processes are not ours to read
        return
    assert server_pid is not None
    backend_pid = await pool.fetchval("SELECT pg_backend_pid()")
    assert _parent_pid(backend_pid) == server_pid

    meter = CpuMeter(server_pid)
    meter(True)
    await pool.fetchval(SERVER_WORK)
    meter(False)
    service_cpu_s, server_cpu_s, wall_s = meter.used
    assert server_cpu_s is not None
    assert server_cpu_s >= 0.05
    assert 0 <= service_cpu_s < server_cpu_s  # this process only waited
    assert wall_s > 0


async def test_without_a_server_process_the_meter_counts_only_the_service() -> None:
    meter = CpuMeter(None)
    meter(True)
    sum(range(2_000_000))
    meter(False)
    service_cpu_s, server_cpu_s, wall_s = meter.used
    assert server_cpu_s is None
    assert service_cpu_s > 0
    assert wall_s > 0


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])
