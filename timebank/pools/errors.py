"""The pools' named errors, in the ledger's hierarchy: each has a stable code that
the API maps to an HTTP status (timebank/api/problems.py) and lists in its docs."""

from __future__ import annotations

from timebank.ledger.errors import LedgerError, ValidationError


class UnknownPool(LedgerError):
    """The community has no pool with this id (or no terms for this unit)."""

    code = "unknown_pool"
    title = "No such pool in this community"


class CharterInvalid(ValidationError):
    """A charter that cannot work: more approvals required than managers, a unit
    listed twice, a cap of zero."""

    code = "charter_invalid"
    title = "The pool's charter is not valid"


class RequestIdConflict(LedgerError):
    """A request for help reuses an id with other content."""

    code = "request_id_conflict"
    title = "This request id was used for another request"


class RequestNotOpen(LedgerError):
    """The request was already paid, declined or withdrawn."""

    code = "request_not_open"
    title = "The request is no longer open"

    def describe(self) -> str:
        return f"the request is {self.context.get('state')}"


class DecisionConflict(LedgerError):
    """A manager decides once on a request; a different second decision is refused."""

    code = "decision_conflict"
    title = "You already decided otherwise on this request"


class PoolCapExceeded(LedgerError):
    """The grant is above the pool's largest grant, or above what one beneficiary
    may receive within the pool's period."""

    code = "pool_cap_exceeded"
    title = "The grant exceeds the pool's cap"

    def describe(self) -> str:
        return (
            f"{self.context.get('cap')} is {self.context.get('cap_value')}; "
            f"already granted {self.context.get('granted', 0)}, asked {self.context.get('amount')}"
        )


class NotEligible(LedgerError):
    """The beneficiary does not meet the pool's eligibility when the grant is paid:
    a balance above the threshold, or no referral when the charter asks for one."""

    code = "not_eligible"
    title = "The beneficiary is not eligible for this pool"


class AmountTooSmallForLevy(ValidationError):
    """The payee pays the levy and it would take all of what they receive."""

    code = "amount_too_small_for_levy"
    title = "The amount is too small to bear the community's levy"


class UnknownCurrency(LedgerError):
    """The unit is not a euro-backed currency of this community."""

    code = "unknown_currency"
    title = "No such euro-backed currency in this community"


POOL_ERRORS: tuple[type[LedgerError], ...] = (
    UnknownCurrency,
    UnknownPool,
    CharterInvalid,
    RequestIdConflict,
    RequestNotOpen,
    DecisionConflict,
    PoolCapExceeded,
    NotEligible,
    AmountTooSmallForLevy,
)
