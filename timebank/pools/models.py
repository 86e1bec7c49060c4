"""Solidarity pools and levies: their values and pure rules. No I/O here; the
store applies these rules inside the database transaction that writes."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from timebank.ledger.models import AMOUNT_MAX, Posting, TransactionKind, TransactionRequest
from timebank.pools.errors import (
    AmountTooSmallForLevy,
    CharterInvalid,
    NotEligible,
    PoolCapExceeded,
)

APPROVALS_REQUIRED_MAX = 20
MANAGERS_MAX = 50
PERIOD_DAYS_MAX = 366
PURPOSE_LENGTH_MAX = 500
REASON_LENGTH_MAX = 500
BASIS_POINTS = 10_000
# Only payments between members and organizations bear a levy: a donation, a
# grant or a fee already goes where the community decided.
LEVIED_KINDS = frozenset({TransactionKind.EXCHANGE, TransactionKind.TRANSFER})

# Grant transactions answering a request take an id derived from the request's,
# so that paying it twice (two last approvals racing) can only write it once.
GRANT_NAMESPACE = uuid.UUID("9b0f4c1e-6a43-4d8e-8f5e-2b7c8a1d3e55")


def grant_transaction_id(request_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(GRANT_NAMESPACE, str(request_id))


class StaffRole(enum.StrEnum):
    MANAGER = "manager"
    # Names the members the pool may help, when its charter asks for a referral.
    REFERRER = "referrer"


class Decision(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


class RequestState(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class LevyPayer(enum.StrEnum):
    PAYER = "payer"
    PAYEE = "payee"
    # Half each; the payer pays the odd smallest step.
    SPLIT = "split"


@dataclass(frozen=True, slots=True)
class UnitTerms:
    """What a pool gives in one unit."""

    unit_code: str
    # The largest single grant.
    grant_max: int
    # The most one beneficiary receives within the pool's period.
    beneficiary_period_max: int
    # Only members whose balance in this unit is at or below this are helped.
    eligible_at_or_below: int | None = None


@dataclass(frozen=True, slots=True)
class Charter:
    purpose: str
    managers: frozenset[uuid.UUID]
    approvals_required: int
    units: tuple[UnitTerms, ...]
    period_days: int = 30
    referrers: frozenset[uuid.UUID] = frozenset()
    requires_referral: bool = False
    donors_visible: bool = False


def validate_charter(charter: Charter) -> None:
    """A charter that can work: enough managers for its threshold, each unit once,
    caps within amounts the ledger accepts."""
    if not 1 <= len(charter.purpose) <= PURPOSE_LENGTH_MAX:
        raise CharterInvalid(
            f"the purpose is 1 to {PURPOSE_LENGTH_MAX} characters", field="purpose"
        )
    if not 1 <= len(charter.managers) <= MANAGERS_MAX:
        raise CharterInvalid(f"a pool has 1 to {MANAGERS_MAX} managers", field="managers")
    if not 1 <= charter.approvals_required <= min(len(charter.managers), APPROVALS_REQUIRED_MAX):
        raise CharterInvalid(
            f"approvals_required must be between 1 and the number of managers "
            f"({len(charter.managers)})",
            field="approvals_required",
        )
    if not 1 <= charter.period_days <= PERIOD_DAYS_MAX:
        raise CharterInvalid(f"period_days is 1 to {PERIOD_DAYS_MAX}", field="period_days")
    if charter.requires_referral and not charter.referrers:
        raise CharterInvalid("a pool that requires a referral names referrers", field="referrers")
    codes = [terms.unit_code for terms in charter.units]
    if not codes or len(set(codes)) != len(codes):
        raise CharterInvalid("a pool gives in one or more units, each listed once", field="units")
    for terms in charter.units:
        for name in ("grant_max", "beneficiary_period_max"):
            value = getattr(terms, name)
            if not 1 <= value <= AMOUNT_MAX:
                raise CharterInvalid(f"{name} is 1 to {AMOUNT_MAX}", field=name)


def request_outcome(
    approvals: int, declines: int, *, approvals_required: int, managers: int
) -> RequestState:
    """k of n: paid once k managers approve; declined once so many decline that k
    approvals can no longer be reached; open until then."""
    assert 0 <= approvals + declines <= managers, "each manager decides once"
    if approvals >= approvals_required:
        return RequestState.PAID
    if managers - declines < approvals_required:
        return RequestState.DECLINED
    return RequestState.OPEN


def check_grant(
    terms: UnitTerms,
    *,
    amount: int,
    granted_in_period: int,
    beneficiary_balance: int,
    referred: bool,
    requires_referral: bool,
) -> None:
    """Caps and eligibility, judged when the grant is paid (not when asked)."""
    if requires_referral and not referred:
        raise NotEligible("the pool helps members named by one of its referrers", reason="referral")
    if terms.eligible_at_or_below is not None and beneficiary_balance > terms.eligible_at_or_below:
        raise NotEligible(
            f"the pool helps members whose balance is at most {terms.eligible_at_or_below}; "
            f"this one's is {beneficiary_balance}",
            reason="balance",
            balance=beneficiary_balance,
            eligible_at_or_below=terms.eligible_at_or_below,
        )
    if amount > terms.grant_max:
        raise PoolCapExceeded(cap="grant_max", cap_value=terms.grant_max, amount=amount)
    if granted_in_period + amount > terms.beneficiary_period_max:
        raise PoolCapExceeded(
            cap="beneficiary_period_max",
            cap_value=terms.beneficiary_period_max,
            granted=granted_in_period,
            amount=amount,
        )


@dataclass(frozen=True, slots=True)
class LevyRule:
    id: uuid.UUID
    unit_code: str
    category: str | None
    pool_id: uuid.UUID
    account_id: uuid.UUID
    rate_bps: int
    fixed_amount: int
    paid_by: LevyPayer
    created_at: datetime | None = None


def levy_amount(rule: LevyRule, amount: int) -> int:
    """rate_bps / 10,000 of the amount, rounded down to the unit's smallest step,
    plus the fixed amount. Rounding down means a levy never exceeds its rate; as
    the levy is one integer leg moved from one account to another, rounding
    creates and loses nothing."""
    assert 0 <= rule.rate_bps <= BASIS_POINTS
    assert rule.fixed_amount >= 0
    return amount * rule.rate_bps // BASIS_POINTS + rule.fixed_amount


def levy_shares(rule: LevyRule, amount: int) -> tuple[int, int]:
    """(payer's share, payee's share) of the levy on `amount`; they sum to it."""
    levy = levy_amount(rule, amount)
    if rule.paid_by is LevyPayer.PAYER:
        return levy, 0
    if rule.paid_by is LevyPayer.PAYEE:
        return 0, levy
    payee_share = levy // 2
    return levy - payee_share, payee_share


def rule_for(rules: Sequence[LevyRule], unit_code: str, category: str | None) -> LevyRule | None:
    """The rule in force for this unit and category: the category's own, else the
    unit's rule for every category."""
    general = None
    for rule in rules:
        if rule.unit_code != unit_code:
            continue
        if rule.category is not None and rule.category == category:
            return rule
        if rule.category is None:
            general = rule
    return general


def with_levy(request: TransactionRequest, rule: LevyRule) -> TransactionRequest:
    """The transfer with the levy's legs: the payer pays the amount and their share,
    the payee receives the amount less theirs, the pool receives the levy, all in
    the one transaction. The fingerprint stays the client's request's, so a retry
    is recognised even if the rule changed since."""
    assert request.kind in LEVIED_KINDS
    assert len(request.postings) == 2
    payer, payee = request.postings
    assert payer.amount < 0 < payee.amount
    assert payer.amount == -payee.amount
    amount = payee.amount
    if rule.account_id in (payer.account_id, payee.account_id):
        return request
    payer_share, payee_share = levy_shares(rule, amount)
    if payer_share + payee_share == 0:
        return request
    if payee_share >= amount:
        raise AmountTooSmallForLevy(amount=amount, levy=payer_share + payee_share)
    if amount + payer_share > AMOUNT_MAX:
        raise AmountTooSmallForLevy(
            f"the amount with its levy is above {AMOUNT_MAX}", amount=amount
        )
    postings = (
        Posting(payer.account_id, -(amount + payer_share)),
        Posting(payee.account_id, amount - payee_share),
        Posting(rule.account_id, payer_share + payee_share),
    )
    assert sum(posting.amount for posting in postings) == 0
    return replace(request, postings=postings, client_postings=request.postings)


def with_overflow(
    request: TransactionRequest, *, payee_room: int, overflow_account: uuid.UUID
) -> TransactionRequest:
    """A transfer whose payee can take only `payee_room` more (their maximum less
    their balance and pending credits): what is above goes to the overflow
    account (a pool's) in the same transaction, instead of the payment being
    refused. With no room at all, the transfer is left for the ledger to refuse:
    the payee must receive something of a payment made to them."""
    payer, payee, *rest = request.postings
    assert payer.amount < 0 < payee.amount
    excess = payee.amount - max(payee_room, 0)
    if excess <= 0 or payee_room <= 0 or overflow_account in (payer.account_id, payee.account_id):
        return request
    merged = False
    legs = [payer, Posting(payee.account_id, payee.amount - excess)]
    for leg in rest:
        if leg.account_id == overflow_account:
            legs.append(Posting(leg.account_id, leg.amount + excess))
            merged = True
        else:
            legs.append(leg)
    if not merged:
        legs.append(Posting(overflow_account, excess))
    assert sum(leg.amount for leg in legs) == 0
    client_postings = (
        request.client_postings if request.client_postings is not None else request.postings
    )
    return replace(request, postings=tuple(legs), client_postings=client_postings)
