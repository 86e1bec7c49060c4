"""Log lines are written in bulk, but never held long, and warnings go out at once."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
import structlog

from timebank.logging import (
    FLUSH_SIZE_BYTES,
    BufferedLines,
    UtcTimestamper,
    configure_logging,
    render_json,
)
from timebank.settings import Settings


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


def _stamped(timestamper: UtcTimestamper) -> str:
    stamp: str = timestamper(None, "info", {})["timestamp"]
    return stamp


@pytest.mark.parametrize(
    "at_ns",
    [
        1_795_847_251_552_405_906,  # an ordinary moment
        1_795_847_251_000_000_000,  # on the second: the microseconds stay written
        1_795_847_251_999_999_999,  # just before the next one: truncated, not rounded
        946_684_799_000_001_000,  # 1999-12-31T23:59:59.000001
    ],
)
def test_timestamps_are_utc_iso_to_the_microsecond(
    monkeypatch: pytest.MonkeyPatch, at_ns: int
) -> None:
    monkeypatch.setattr("timebank.logging.time.time_ns", lambda: at_ns)
    at = datetime.fromtimestamp(at_ns // 1000 / 1_000_000, UTC)
    expected = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _stamped(UtcTimestamper()) == expected


def test_a_timestamp_takes_its_second_from_the_moment_not_from_the_last_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now_ns = [1_795_847_251_999_999_000]
    monkeypatch.setattr("timebank.logging.time.time_ns", lambda: now_ns[0])
    timestamper = UtcTimestamper()
    first = _stamped(timestamper)
    now_ns[0] += 2_000
    second = _stamped(timestamper)
    now_ns[0] += 3_600 * 1_000_000_000
    third = _stamped(timestamper)
    assert (first, second, third) == (
        "2026-11-28T06:27:31.999999Z",
        "2026-11-28T06:27:32.000001Z",
        "2026-11-28T07:27:32.000001Z",
    )


class _Shown:
    def __structlog__(self) -> str:
        return "shown its own way"


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_lines_render_as_structlogs_json_renderer_renders_them() -> None:
    event = {
        "event": "request",
        "status": 201,
        "duration_ms": 1.25,
        "principal": "member:é",
        "nothing": None,
        "nested": {"a": [1, 2]},
        "own": _Shown(),
        "opaque": _Opaque(),
    }
    ours = render_json(None, "info", dict(event))
    theirs = structlog.processors.JSONRenderer()(None, "info", dict(event))
    assert ours == theirs
    assert json.loads(ours)["own"] == "shown its own way"
    assert json.loads(ours)["opaque"] == "<opaque>"


def test_configured_json_lines_carry_level_time_and_bound_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("timebank.logging.sys.stderr", stream)
    monkeypatch.setattr("timebank.logging._buffer", None)
    # The standard library's root logger is left as the test run set it.
    monkeypatch.setattr("timebank.logging.logging.basicConfig", lambda **_: None)
    saved = structlog.get_config()
    try:
        configure_logging(Settings(log_format="json", log_level="info"))
        bound = structlog.contextvars.bind_contextvars(request_id="r-1")
        try:
            structlog.get_logger("test").warning("disk_low", free_mb=12)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
    finally:
        structlog.configure(**saved)
    (line,) = stream.getvalue().splitlines()
    fields = json.loads(line)
    assert fields.pop("timestamp").endswith("Z")
    assert fields == {
        "event": "disk_low",
        "free_mb": 12,
        "request_id": "r-1",
        "level": "warning",
    }
