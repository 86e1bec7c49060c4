"""Lines that tests give to the run's summary (the fault scenarios' figures).

A test appends `summary_line(section, line)` to its node's user_properties; they
travel in its reports, which pytest-xdist's workers send to the process that prints
the summary, where `SummaryLines` (registered by tests/conftest.py) prints them."""

from __future__ import annotations

import pytest

# The user property's name: (SUMMARY_PROPERTY, (section, line)).
SUMMARY_PROPERTY = "timebank_summary_line"


def summary_line(section: str, line: str) -> tuple[str, object]:
    """A user property that prints `line` under `section` at the end of the run."""
    return (SUMMARY_PROPERTY, (section, line))


class SummaryLines:
    """Gathers the tests' summary lines from their reports, prints them at the end."""

    def __init__(self) -> None:
        self._sections: dict[str, list[str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Every phase's report carries the test's properties so far: the teardown's
        # has them all.
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name != SUMMARY_PROPERTY:
                continue
            # A tuple, or a list once a worker's report has been sent.
            assert isinstance(value, tuple | list), value
            assert len(value) == 2, value
            section, line = value
            self._sections.setdefault(str(section), []).append(str(line))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for section, lines in self._sections.items():
            terminalreporter.section(section)
            for line in lines:
                terminalreporter.write_line(line)
