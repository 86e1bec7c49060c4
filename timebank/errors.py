"""The root of Timebank's named errors. Every refusal anywhere (ledger, identities,
the HTTP edge) is a TimebankError with a stable machine `code`, a `title`, a
`detail` for people and a `context` of facts; the API maps codes to HTTP statuses
in one place (timebank/api/problems.py)."""

from __future__ import annotations

from typing import Any, ClassVar


class TimebankError(Exception):
    """A named refusal; nothing was written."""

    code: ClassVar[str] = "error"
    title: ClassVar[str] = "The request was refused"

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.context = context
        self.detail = detail or self.describe()
        super().__init__(self.detail)

    def describe(self) -> str:
        return self.title

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and isinstance(other, TimebankError)
            and self.context == other.context
        )

    def __hash__(self) -> int:
        return hash((self.code, tuple(sorted(map(str, self.context.items())))))


class NotFound(TimebankError):
    """Nothing at this path, or nothing the caller may know of."""

    code = "not_found"
    title = "Not found"
