"""The lines tests give to the run's summary (tests/summary.py) are printed by the
process that prints the summary, also when the tests ran in pytest-xdist's workers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

REPOSITORY = Path(__file__).resolve().parents[2]
CONFTEST = """
from tests.summary import SummaryLines

def pytest_configure(config):
    config.pluginmanager.register(SummaryLines(), "summary-lines")
"""
FIRST = "first: 3 sent, 0 lost"
SECOND = "second: 5 sent, 0 lost"
NOTE = "  a note"
TESTS = """
from tests.summary import summary_line

def test_first(request):
    request.node.user_properties.append(summary_line("scenario figures", "first: 3 sent, 0 lost"))

def test_second(request):
    request.node.user_properties.append(summary_line("scenario figures", "second: 5 sent, 0 lost"))
    request.node.user_properties.append(summary_line("scenario figures", "  a note"))

def test_without_lines():
    pass
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_summary_lines_reach_the_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_scenarios=TESTS)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", workers)
    result.assert_outcomes(passed=3)
    output = result.stdout.lines
    assert sum(" scenario figures " in line for line in output) == 1
    section = next(index for index, line in enumerate(output) if " scenario figures " in line)
    following: list[str] = []
    for line in output[section + 1 :]:
        if line.startswith("="):  # the next section, or the outcome's line
            break
        if line:
            following.append(line)
    # The tests' order depends on the workers; a test's own lines stay together.
    assert sorted(following) == sorted([FIRST, SECOND, NOTE])
    assert following.index(NOTE) == following.index(SECOND) + 1
