"""The embedded server's system user (as root) is created once, however many
processes start embedded servers at the same moment on a fresh machine."""

from __future__ import annotations

import multiprocessing
import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from timebank import database
from timebank.database import ensure_system_user

RACERS = 16
ROUNDS = 5

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0,
    reason="only root makes system users (pgserver runs PostgreSQL as the caller otherwise)",
)


def _race(name: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    ensure_system_user(name)


@pytest.fixture
def throwaway_user_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    userdel = shutil.which("userdel")
    assert userdel is not None
    for name in names:
        subprocess.run([userdel, name], check=False, capture_output=True)


def test_processes_racing_to_create_the_system_user_all_succeed_and_make_it_once(
    throwaway_user_names: list[str],
) -> None:
    # Unguarded, one race in three or so ends with a failed useradd: several rounds.
    context = multiprocessing.get_context("fork")
    for _ in range(ROUNDS):
        name = f"tbtest{secrets.token_hex(4)}"
        throwaway_user_names.append(name)
        barrier = context.Barrier(RACERS)
        racers = [context.Process(target=_race, args=(name, barrier)) for _ in range(RACERS)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)

        assert [racer.exitcode for racer in racers] == [0] * RACERS
        assert [entry.pw_name for entry in pwd.getpwall()].count(name) == 1


def test_an_existing_user_is_left_as_it_is(throwaway_user_names: list[str]) -> None:
    throwaway_user_name = f"tbtest{secrets.token_hex(4)}"
    throwaway_user_names.append(throwaway_user_name)
    ensure_system_user(throwaway_user_name)
    before = pwd.getpwnam(throwaway_user_name)

    ensure_system_user(throwaway_user_name)

    assert pwd.getpwnam(throwaway_user_name) == before


def test_the_lock_is_not_taken_through_a_symbolic_link(
    throwaway_user_names: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Root opens the lock by a fixed name in a shared directory: a link planted
    there must not lead it to open another file."""
    target = tmp_path / "target"
    target.write_text("")
    link = tmp_path / "planted.lock"
    link.symlink_to(target)
    monkeypatch.setattr(database, "SYSTEM_USER_LOCK_PATH", link)
    name = f"tbtest{secrets.token_hex(4)}"
    throwaway_user_names.append(name)

    with pytest.raises(OSError, match="symbolic links"):
        ensure_system_user(name)

    assert name not in [entry.pw_name for entry in pwd.getpwall()]
