"""The ledger's named errors. Each has a stable machine `code` (returned by the API
and listed in its documentation) and carries, in `context`, what a person needs to
understand it: which account, which limit, by how much."""

from __future__ import annotations

from typing import Any, ClassVar

from timebank.errors import TimebankError


class LedgerError(TimebankError):
    """A ledger rule refused the request; nothing was written."""

    code: ClassVar[str] = "ledger_error"
    title: ClassVar[str] = "The ledger refused the request"


class ValidationError(LedgerError):
    """The request is malformed: a field is missing, of the wrong type or out of range."""

    code = "validation_error"
    title = "The request is not valid"


class AmountMustBePositive(ValidationError):
    """A transfer's amount (or a posting's amount) is zero or negative where it must not be."""

    code = "amount_must_be_positive"
    title = "The amount must be a positive whole number"


class AccountsMustBeDifferent(ValidationError):
    """A transaction names the same account twice."""

    code = "accounts_must_be_different"
    title = "The accounts of a transaction must be different"

    def describe(self) -> str:
        return f"account {self.context.get('account_id')} appears more than once"


class PostingsMustBalance(ValidationError):
    """The postings of a transaction do not sum to zero."""

    code = "postings_must_balance"
    title = "The postings of a transaction must sum to zero"

    def describe(self) -> str:
        return f"the postings sum to {self.context.get('sum')}, not 0"


class BatchTooLarge(ValidationError):
    """A batch holds more transactions than allowed."""

    code = "batch_too_large"
    title = "Too many transactions in one batch"

    def describe(self) -> str:
        return f"{self.context.get('size')} transactions; at most {self.context.get('max_size')}"


class UnknownCommunity(LedgerError):
    """No community has this id or slug."""

    code = "unknown_community"
    title = "No such community"


class UnknownUnit(LedgerError):
    """The community has no unit with this code or id."""

    code = "unknown_unit"
    title = "No such unit in this community"


class UnknownAccount(LedgerError):
    """No account with this id exists in the transaction's community."""

    code = "unknown_account"
    title = "No such account in this community"

    def describe(self) -> str:
        return f"account {self.context.get('account_id')} does not exist in this community"


class UnknownTransaction(LedgerError):
    """No transaction with this id exists in the community."""

    code = "unknown_transaction"
    title = "No such transaction"


class UnitMismatch(LedgerError):
    """An account is not in the transaction's unit, or postings do not balance per unit."""

    code = "unit_mismatch"
    title = "The accounts are not all in the transaction's unit"

    def describe(self) -> str:
        if "unbalanced_by" in self.context:
            return (
                f"postings in unit {self.context.get('unit')} sum to "
                f"{self.context.get('unbalanced_by')}: each unit must balance on its own"
            )
        return (
            f"account {self.context.get('account_id')} is in unit {self.context.get('unit')}, "
            f"not {self.context.get('expected_unit')}"
        )


class AccountFrozen(LedgerError):
    """A frozen account refuses movements until unfrozen."""

    code = "account_frozen"
    title = "The account is frozen"

    def describe(self) -> str:
        return f"account {self.context.get('account_id')} is frozen and refuses movements"


class AccountClosed(LedgerError):
    """A closed account refuses movements, for good."""

    code = "account_closed"
    title = "The account is closed"

    def describe(self) -> str:
        return f"account {self.context.get('account_id')} is closed"


class AccountNotEmpty(LedgerError):
    """Only an account with a zero balance and nothing pending can be closed."""

    code = "account_not_empty"
    title = "The account is not empty"


class LimitExceeded(LedgerError):
    """The movement would take the account below its minimum or above its maximum
    balance, counting pending reservations."""

    code = "limit_exceeded"
    title = "The account's limit would be exceeded"

    def describe(self) -> str:
        context = self.context
        if context.get("limit") == "min_balance":
            return (
                f"account {context.get('account_id')} has {context.get('available')} available "
                f"and its minimum balance is {context.get('limit_value')}: a debit of "
                f"{-int(context.get('amount', 0))} exceeds it by {context.get('exceeded_by')}"
            )
        return (
            f"account {context.get('account_id')} would hold {context.get('committed')} + "
            f"{context.get('amount')}, above its maximum balance {context.get('limit_value')} "
            f"by {context.get('exceeded_by')}"
        )


class LimitsConflictWithBalance(LedgerError):
    """New limits must contain the balance, including pending reservations."""

    code = "limits_conflict_with_balance"
    title = "The new limits do not contain the current balance"


class TransactionIdConflict(LedgerError):
    """The transaction id was already used for a transaction with other content."""

    code = "transaction_id_conflict"
    title = "This transaction id is already used for another transaction"

    def describe(self) -> str:
        return (
            f"transaction {self.context.get('transaction_id')} exists with different content; "
            "choose a new id for a new transaction"
        )


class NotPending(LedgerError):
    """Only a pending transaction can be confirmed or voided."""

    code = "not_pending"
    title = "The transaction is not pending"

    def describe(self) -> str:
        return f"transaction {self.context.get('transaction_id')} is {self.context.get('state')}"


class NotPosted(LedgerError):
    """Only a posted transaction can be reversed."""

    code = "not_posted"
    title = "The transaction is not posted"

    def describe(self) -> str:
        return f"transaction {self.context.get('transaction_id')} is {self.context.get('state')}"


class NotReversible(LedgerError):
    """A reversal is not itself reversed; post a new transaction instead."""

    code = "not_reversible"
    title = "This transaction cannot be reversed"


class AlreadyReversed(LedgerError):
    """A posted transaction is reversed at most once."""

    code = "already_reversed"
    title = "The transaction is already reversed"

    def describe(self) -> str:
        return (
            f"transaction {self.context.get('transaction_id')} was already reversed by "
            f"{self.context.get('reversal_id')}"
        )


class DuplicateName(LedgerError):
    """A community slug or unit code is already taken."""

    code = "already_exists"
    title = "Something with this name already exists"


ERRORS_BY_CODE: dict[str, type[LedgerError]] = {
    error.code: error
    for error in (
        ValidationError,
        AmountMustBePositive,
        AccountsMustBeDifferent,
        PostingsMustBalance,
        BatchTooLarge,
        UnknownCommunity,
        UnknownUnit,
        UnknownAccount,
        UnknownTransaction,
        UnitMismatch,
        AccountFrozen,
        AccountClosed,
        AccountNotEmpty,
        LimitExceeded,
        LimitsConflictWithBalance,
        TransactionIdConflict,
        NotPending,
        NotPosted,
        NotReversible,
        AlreadyReversed,
        DuplicateName,
    )
}


def error_from_code(code: str, context: dict[str, Any]) -> LedgerError:
    """Rebuilds the named error the database raised. An unknown code is a bug."""
    error_class = ERRORS_BY_CODE.get(code)
    assert error_class is not None, f"database raised an unknown ledger error code: {code}"
    return error_class(**context)


class DatabaseUnavailable(LedgerError):
    """The database could not be reached, or the connection was lost before its
    answer came back: the write may or may not have been made. Retry with the same
    transaction id, which is safe: it answers as the original would (200 if it was
    made, 201 if it is made now), never twice."""

    code = "database_unavailable"
    title = "The ledger's database is unavailable; retry later"
