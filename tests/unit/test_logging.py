"""Log lines are written in bulk, but never held long, and warnings go out at once."""

from __future__ import annotations

import io

import pytest

from timebank.logging import FLUSH_SIZE_BYTES, BufferedLines


def test_lines_wait_for_the_interval_then_go_out_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("timebank.logging.time.monotonic", lambda: now[0])
    stream = io.StringIO()
    lines = BufferedLines(stream)
    for text in ("one\n", "two\n"):
        lines.write(text)
        lines.flush()
    assert stream.getvalue() == ""
    now[0] += 0.25
    lines.write("three\n")
    lines.flush()
    assert stream.getvalue() == "one\ntwo\nthree\n"


def test_urgent_lines_and_full_buffers_go_out_at_once() -> None:
    stream = io.StringIO()
    lines = BufferedLines(stream)
    lines.write("fine\n")
    lines.flush()
    lines.urgent = True
    lines.write("broken\n")
    lines.flush()
    assert stream.getvalue() == "fine\nbroken\n"
    big = "x" * FLUSH_SIZE_BYTES + "\n"
    lines.write(big)
    lines.flush()
    assert stream.getvalue().endswith(big)


def test_flush_now_writes_everything_held() -> None:
    stream = io.StringIO()
    lines = BufferedLines(stream)
    lines.write("held\n")
    lines.flush()
    lines.flush_now()
    assert stream.getvalue() == "held\n"
