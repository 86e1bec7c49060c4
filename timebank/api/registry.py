"""The one contract every endpoint module declares its operations on."""

from __future__ import annotations

from timebank.api.contract import Contract

api = Contract()
