"""Fault injection: the real service (`python -m timebank serve`, loopback only),
killed with SIGKILL, cut off from its clients and from its database under load,
must lose nothing it acknowledged and write nothing twice.

    python -m pytest tests/faults                              # short: each fault a few times
    TIMEBANK_FAULTS_SOAK_S=600 python -m pytest tests/faults   # soak: 600 s shared by the scenarios

Each scenario works in a fresh database on the suite's server (the embedded one,
or the one DATABASE_URL names), except the database crash, which runs its own
embedded PostgreSQL; each prints its figures (requests, acknowledged, retried,
lost, duplicated...) in the run's summary, and runs `timebank check` and `timebank
audit verify` (of its community's exported log) at its end."""
