"""The code stays clean: ruff (lint and format) and mypy strict pass on the tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_tool_passes(command: list[str]) -> None:
    """Each tool exits 0 on the whole tree; its output is shown when it does not."""
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("distribution", ["loadfile", "loadscope", "loadgroup"])
def test_a_distribution_that_would_skip_contract_cases_is_refused(distribution: str) -> None:
    """Grouping modes of pytest-xdist would run one of schemathesis's generated
    cases (they share a node id): the suite refuses them in one line, exit 4."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--dist", distribution, "--co", "-q", "tests/unit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, completed.stdout
    assert f"--dist {distribution} would run one of the API contract's generated cases" in (
        completed.stderr
    )


def test_the_suites_own_options_start_a_run_with_the_plugins_installed_here() -> None:
    """pyproject's addopts (workers, their distribution, plugins kept out) start a
    run on this Python: on CI's, which carries pytest-benchmark, they once ended
    it at start-up (exit 3)."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "tests/unit/test_note.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == pytest.ExitCode.OK, completed.stdout + completed.stderr
