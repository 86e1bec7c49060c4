"""The Docker files stay consistent with the service (no Docker engine runs here,
so they are checked as text): every variable they set is a real setting, the
image is slim and runs as a user of its own with a health check on the ready
probe at the port it sets, and compose waits longer than the shutdown takes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.test_configuration_reference import variable_of
from timebank.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DOCKERFILE = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
# What the service takes after the grace: writes 2 s, the pool 3 s (README, "Stopping").
CLOSING_S = 5
SETTING_VARIABLES = {variable_of(name) for name in Settings.model_fields}


def dockerfile_environment() -> dict[str, str]:
    """The ENV instruction's NAME=value pairs."""
    instruction = re.search(r"^ENV ((?:.*\\\n)*.*)$", DOCKERFILE, re.MULTILINE)
    assert instruction is not None
    return dict(re.findall(r"(\w+)=(\S+)", instruction.group(1)))


def compose_environment() -> dict[str, str]:
    """The timebank service's `environment:` entries."""
    service = COMPOSE.split("\n  timebank:\n", 1)[1].split("\nvolumes:", 1)[0]
    block = service.split("    environment:\n", 1)[1]
    entries: dict[str, str] = {}
    for line in block.splitlines():
        match = re.match(r"^      (\w+): (.*)$", line)
        if match:
            entries[match.group(1)] = match.group(2).strip('"')
        elif not line.startswith("      #"):
            break
    return entries


def test_every_variable_the_docker_files_set_is_a_setting() -> None:
    """A renamed or removed setting cannot linger in the image or compose file."""
    set_there = {
        name
        for name in (*dockerfile_environment(), *compose_environment())
        if name.startswith("TIMEBANK_") or name == "DATABASE_URL"
    }
    assert sorted(set_there - SETTING_VARIABLES) == []
    assert "DATABASE_URL" in compose_environment()


def test_the_image_is_slim_non_root_and_checks_readiness_on_its_port() -> None:
    """A slim base, a system user with a fixed uid, and a HEALTHCHECK on
    /health/ready at the port the image listens on (0.0.0.0 inside)."""
    environment = dockerfile_environment()
    assert re.search(r"^FROM python:3\.\d+-slim$", DOCKERFILE, re.MULTILINE)
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert user == ["timebank"]
    assert "useradd --system --uid 10001" in DOCKERFILE
    assert environment["TIMEBANK_HOST"] == "0.0.0.0"  # noqa: S104 (inside a container)
    port = environment["TIMEBANK_PORT"]
    assert f"http://127.0.0.1:{port}/health/ready" in DOCKERFILE
    assert re.search(rf"^EXPOSE {port}$", DOCKERFILE, re.MULTILINE)
    assert "COPY sql ./sql" in DOCKERFILE  # the migrations the service applies at start


def test_compose_waits_longer_than_the_shutdown_takes() -> None:
    """stop_grace_period exceeds the shutdown grace plus the closing bound, or
    SIGKILL would cut requests the service was finishing."""
    grace_s = float(compose_environment()["TIMEBANK_SHUTDOWN_GRACE_S"])
    match = re.search(r"^    stop_grace_period: (\d+)s$", COMPOSE, re.MULTILINE)
    assert match is not None
    assert int(match.group(1)) > grace_s + CLOSING_S
