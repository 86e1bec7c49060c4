"""The audit benchmark's ledger rows: the signed and logged path's overhead divided
into the verification's part and the rest."""

from __future__ import annotations

import os

from bench.audit_bench import (
    LOGGED,
    SIGNED_LOGGED,
    SIGNED_UNLOGGED,
    UNLOGGED,
    UNVERIFIED,
    LedgerFigure,
    ledger_rows,
)


def _figure(transfers_per_s: float, overhead: float) -> LedgerFigure:
    return LedgerFigure(transfers_per_s, overhead, (overhead, overhead), 50.0, 80.0, 16.0, 0.5)


FIGURES = {
    UNLOGGED: _figure(10_000, 0.0),
    LOGGED: _figure(8_800, 0.12),
    SIGNED_UNLOGGED: _figure(7_300, 0.27),
    SIGNED_LOGGED: _figure(6_600, 0.34),
}


def test_the_verifications_part_is_what_it_adds_to_the_path_without_it() -> None:
    rows = ledger_rows({**FIGURES, UNVERIFIED: _figure(7_700, 0.23)})
    name, figure, target, detail = rows[-1]
    assert name == f"  {SIGNED_LOGGED}: the verification's part"
    assert figure == "+11.0 points"
    assert target == ""
    assert detail.startswith("of its 34.0%; the rest, 23.0%, is the path without it")
    # The measure has a row of its own, without a target: it is not a way to run.
    [measure] = [row for row in rows if row[0].endswith(UNVERIFIED)]
    assert measure[1:3] == ("7,700/s", "")


def test_without_the_measure_there_is_no_division() -> None:
    rows = ledger_rows(FIGURES)
    assert not any("verification's part" in name for name, *_ in rows)
    assert rows[-1][0] == f"  {SIGNED_LOGGED}: rate with all {os.cpu_count() or 1} cores busy"
