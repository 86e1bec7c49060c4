"""Settings come from the environment, or from arguments when built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

from timebank.settings import Settings, default_data_dir


def test_database_url_is_read_under_its_conventional_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DATABASE_URL (and TIMEBANK_DATABASE_URL) name the database server."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/timebank")
    assert Settings().database_url == "postgresql://db.example/timebank"


def test_settings_built_in_code_take_their_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arguments win over the environment, including the aliased database_url."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-environment/x")
    settings = Settings(database_url="postgresql://from-code/y", port=9000)
    assert (settings.database_url, settings.port) == ("postgresql://from-code/y", 9000)


def test_data_dir_defaults_to_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without TIMEBANK_DATA_DIR the data lives under $XDG_DATA_HOME/timebank."""
    monkeypatch.delenv("TIMEBANK_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "timebank"
    assert Settings().data_dir == tmp_path / "timebank"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TIMEBANK_PORT", "eighty"), ("TIMEBANK_PORT", "70000"), ("TIMEBANK_LOG_FORMAT", "xml")],
)
def test_malformed_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A malformed value is an error at start, not a surprise later."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable.removeprefix("TIMEBANK_").lower()):
        Settings()
