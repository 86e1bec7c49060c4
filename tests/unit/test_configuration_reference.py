"""The README's configuration reference stays complete and true: one row per
Settings field, under its environment variable, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic.fields import FieldInfo

from timebank.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Configuration"
# A table row whose first cell is one variable in backticks: `| `NAME` | default | meaning |`.
ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \| (.+) \|$")
FIRST_CODE = re.compile(r"`([^`]*)`")
# Settings read under a conventional name rather than TIMEBANK_<FIELD>.
CONVENTIONAL_NAMES = {"database_url": "DATABASE_URL"}


def documented() -> dict[str, tuple[str, str]]:
    """The configuration table: variable -> (default cell, meaning cell)."""
    text = README.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice"
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def variable_of(name: str) -> str:
    return CONVENTIONAL_NAMES.get(name, f"TIMEBANK_{name.upper()}")


def default_text(field: FieldInfo) -> str | None:
    """The default as the README writes it; None when it is computed at start."""
    if field.default_factory is not None:
        return None
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_setting_is_documented_and_every_documented_variable_exists() -> None:
    """Adding a setting without its README row fails here, and so does a row left
    behind for a setting that is gone."""
    expected = {variable_of(name) for name in Settings.model_fields}
    rows = documented()
    assert sorted(expected - set(rows)) == [], "settings missing from the README table"
    assert sorted(set(rows) - expected) == [], "README rows for settings that do not exist"


def test_each_documented_default_is_the_real_one() -> None:
    """The default column shows each setting's actual default: `unset` for None,
    the value in backticks otherwise (computed defaults are described instead)."""
    rows = documented()
    wrong = {}
    for name, field in Settings.model_fields.items():
        expected = default_text(field)
        if variable_of(name) not in rows:
            continue  # the test above names it
        cell, meaning = rows[variable_of(name)]
        assert meaning.strip(), f"{variable_of(name)} has no meaning"
        if expected is None:
            continue
        code = FIRST_CODE.search(cell)
        shown = code.group(1) if code else cell.strip()
        if shown != expected:
            wrong[variable_of(name)] = (shown, expected)
    assert wrong == {}, "README default -> actual default"
