"""Replaying a community's log: from its entries alone, in order, rebuild every
account's balance and check that each entry is possible at its position (known
accounts and units, balanced postings per unit, pending transactions resolved
once). Pure: the offline verifier and `timebank check` both use it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import rfc8785

ENTRY_VERSION = 1
RESOLVED_STATES = frozenset({"posted", "voided", "expired"})


class ReplayError(Exception):
    """An entry that cannot be where it is: what the log says is impossible."""

    def __init__(self, leaf_index: int, reason: str) -> None:
        self.leaf_index = leaf_index
        self.reason = reason
        super().__init__(f"entry {leaf_index}: {reason}")


@dataclass
class AccountState:
    unit: str
    owner: str
    status: str
    min_balance: int
    max_balance: int
    balance: int = 0


@dataclass
class Replay:
    """The state the entries so far describe."""

    units: dict[str, str] = field(default_factory=dict)  # unit id -> code
    accounts: dict[str, AccountState] = field(default_factory=dict)
    # Pending transactions: id -> postings (account, amount).
    pending: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    transactions: set[str] = field(default_factory=set)
    size: int = 0

    def balances(self) -> dict[str, int]:
        return {account_id: state.balance for account_id, state in self.accounts.items()}


def parse_entry(leaf_index: int, raw: bytes) -> dict[str, Any]:
    """An entry's JSON object; it must be RFC 8785 canonical, byte for byte."""
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ReplayError(leaf_index, f"not JSON: {error}") from None
    if not isinstance(entry, dict):
        raise ReplayError(leaf_index, "not a JSON object")
    try:
        canonical = rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as error:
        raise ReplayError(leaf_index, f"cannot be canonical: {error}") from None
    if canonical != raw:
        raise ReplayError(leaf_index, "not in RFC 8785 canonical form")
    if entry.get("v") != ENTRY_VERSION:
        raise ReplayError(leaf_index, f"unknown entry version {entry.get('v')!r}")
    return entry


def replay(entries: Iterable[bytes], state: Replay | None = None) -> Replay:
    """Applies entries (raw bytes, from leaf `state.size` on) to a state."""
    state = state if state is not None else Replay()
    for raw in entries:
        apply_entry(state, parse_entry(state.size, raw))
        state.size += 1
    return state


def apply_entry(state: Replay, entry: dict[str, Any]) -> None:
    index = state.size
    kind = entry.get("type")
    try:
        if kind == "unit":
            state.units[entry["unit"]] = entry["code"]
        elif kind == "account":
            _apply_account(state, entry)
        elif kind == "transaction":
            _apply_transaction(state, index, entry)
        elif kind == "resolution":
            _apply_resolution(state, index, entry)
        else:
            raise ReplayError(index, f"unknown entry type {kind!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise ReplayError(index, f"malformed {kind} entry: {error!r}") from None


def _apply_account(state: Replay, entry: dict[str, Any]) -> None:
    account_id = entry["account"]
    known = state.accounts.get(account_id)
    balance = known.balance if known is not None else 0
    state.accounts[account_id] = AccountState(
        unit=entry["unit"],
        owner=entry["owner"],
        status=entry["status"],
        min_balance=int(entry["min_balance"]),
        max_balance=int(entry["max_balance"]),
        balance=balance,
    )


def _apply_transaction(state: Replay, index: int, entry: dict[str, Any]) -> None:
    transaction_id = entry["id"]
    if transaction_id in state.transactions:
        raise ReplayError(index, f"transaction {transaction_id} appears twice")
    postings = [(str(account), int(amount)) for account, amount in entry["postings"]]
    totals: dict[str, int] = {}
    for account_id, amount in postings:
        account = state.accounts.get(account_id)
        if account is None:
            raise ReplayError(index, f"account {account_id} is not opened before its use")
        if isinstance(amount, bool) or amount == 0:
            raise ReplayError(index, f"a posting of {amount!r}")
        totals[account.unit] = totals.get(account.unit, 0) + amount
    unbalanced = {unit: total for unit, total in totals.items() if total != 0}
    if unbalanced:
        raise ReplayError(index, f"postings do not balance per unit: {unbalanced}")
    state.transactions.add(transaction_id)
    if entry["state"] == "pending":
        state.pending[transaction_id] = postings
    elif entry["state"] == "posted":
        _post(state, postings)
    else:
        raise ReplayError(index, f"a transaction written as {entry['state']!r}")


def _apply_resolution(state: Replay, index: int, entry: dict[str, Any]) -> None:
    transaction_id = entry["id"]
    postings = state.pending.pop(transaction_id, None)
    if postings is None:
        raise ReplayError(index, f"transaction {transaction_id} is not pending")
    if entry["state"] not in RESOLVED_STATES:
        raise ReplayError(index, f"a resolution to {entry['state']!r}")
    if entry["state"] == "posted":
        _post(state, postings)


def _post(state: Replay, postings: list[tuple[str, int]]) -> None:
    for account_id, amount in postings:
        state.accounts[account_id].balance += amount
