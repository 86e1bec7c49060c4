"""A deliberately simple in-memory ledger: the reference the database ledger is
compared against. It applies the same rules one posting at a time, with dicts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from timebank.ledger.models import limit_problem


@dataclass
class ModelAccount:
    min_balance: int
    max_balance: int
    balance: int = 0
    frozen: bool = False


@dataclass
class ModelTransaction:
    legs: tuple[tuple[uuid.UUID, int], ...]
    content: object
    pending: bool
    state: str
    is_reversal: bool = False
    reversed_by: uuid.UUID | None = None


@dataclass
class ModelLedger:
    accounts: dict[uuid.UUID, ModelAccount] = field(default_factory=dict)
    transactions: dict[uuid.UUID, ModelTransaction] = field(default_factory=dict)

    def pending(self, account_id: uuid.UUID) -> tuple[int, int]:
        """(pending debits, pending credits) of an account."""
        debits = credits = 0
        for transaction in self.transactions.values():
            if transaction.state != "pending":
                continue
            for leg_account, amount in transaction.legs:
                if leg_account == account_id:
                    debits += -amount if amount < 0 else 0
                    credits += amount if amount > 0 else 0
        return debits, credits

    def _problem(
        self, legs: tuple[tuple[uuid.UUID, int], ...], pending: bool, staged: dict[uuid.UUID, int]
    ) -> str | None:
        for account_id, amount in legs:
            account = self.accounts[account_id]
            debits, credits = self.pending(account_id)
            debits += staged.get(("debits", account_id), 0)  # type: ignore[call-overload]
            credits += staged.get(("credits", account_id), 0)  # type: ignore[call-overload]
            if limit_problem(
                balance=account.balance + staged.get(account_id, 0),
                pending_debits=debits,
                pending_credits=credits,
                min_balance=account.min_balance,
                max_balance=account.max_balance,
                amount=amount,
                pending=pending,
            ):
                return "limit_exceeded"
        return None

    def post(
        self,
        items: list[tuple[uuid.UUID, tuple[tuple[uuid.UUID, int], ...], bool, object]],
    ) -> list[str]:
        """Posts (id, legs, pending, content) items all or nothing. Returns each
        item's outcome, or raises ModelError with the first error's code."""
        outcomes = []
        fresh = []
        for transaction_id, legs, pending, content in items:
            known = self.transactions.get(transaction_id)
            if known is None:
                fresh.append((transaction_id, legs, pending, content))
                outcomes.append("created")
            elif known.content == content:
                outcomes.append("exists")
            else:
                raise ModelError("transaction_id_conflict")
        for _, legs, _, _ in fresh:
            for account_id, _ in legs:
                if self.accounts[account_id].frozen:
                    raise ModelError("account_frozen")
        # Limits in order, each item seeing the effect of the earlier ones.
        staged: dict[object, int] = {}
        for _, legs, pending, _ in fresh:
            problem = self._problem(legs, pending, staged)  # type: ignore[arg-type]
            if problem:
                raise ModelError(problem)
            for account_id, amount in legs:
                if not pending:
                    staged[account_id] = staged.get(account_id, 0) + amount
                elif amount < 0:
                    staged[("debits", account_id)] = staged.get(("debits", account_id), 0) - amount
                else:
                    staged[("credits", account_id)] = (
                        staged.get(("credits", account_id), 0) + amount
                    )
        for transaction_id, legs, pending, content in fresh:
            self.transactions[transaction_id] = ModelTransaction(
                legs, content, pending, "pending" if pending else "posted"
            )
            if not pending:
                self._apply(legs)
        return outcomes

    def _apply(self, legs: tuple[tuple[uuid.UUID, int], ...]) -> None:
        for account_id, amount in legs:
            account = self.accounts[account_id]
            account.balance += amount
            assert account.min_balance <= account.balance <= account.max_balance

    def confirm(self, transaction_id: uuid.UUID) -> str:
        transaction = self.transactions.get(transaction_id)
        if transaction is None:
            raise ModelError("unknown_transaction")
        if transaction.state == "posted" and transaction.pending:
            return "exists"
        if transaction.state != "pending":
            raise ModelError("not_pending")
        if any(self.accounts[account_id].frozen for account_id, _ in transaction.legs):
            raise ModelError("account_frozen")
        transaction.state = "posted"
        self._apply(transaction.legs)
        return "created"

    def void(self, transaction_id: uuid.UUID) -> str:
        transaction = self.transactions.get(transaction_id)
        if transaction is None:
            raise ModelError("unknown_transaction")
        if transaction.state == "voided":
            return "exists"
        if transaction.state != "pending":
            raise ModelError("not_pending")
        transaction.state = "voided"
        return "created"

    def reverse(self, transaction_id: uuid.UUID, reversal_id: uuid.UUID, content: object) -> str:
        original = self.transactions.get(transaction_id)
        if original is None:
            raise ModelError("unknown_transaction")
        if original.is_reversal:
            raise ModelError("not_reversible")
        if original.state != "posted":
            raise ModelError("not_posted")
        if original.reversed_by is not None and original.reversed_by != reversal_id:
            raise ModelError("already_reversed")
        legs = tuple((account_id, -amount) for account_id, amount in original.legs)
        (outcome,) = self.post([(reversal_id, legs, False, content)])
        self.transactions[reversal_id].is_reversal = True
        original.reversed_by = reversal_id
        return outcome


class ModelError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
