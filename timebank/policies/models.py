"""Periodic policies: their values and pure rules (no I/O)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from timebank.ledger.errors import ValidationError
from timebank.ledger.models import AMOUNT_MAX, TransactionKind
from timebank.policies.periods import Period, is_boundary

BASIS_POINTS = 10_000
# Transactions of a run are derived from the schedule, the period and the
# account: a retried run writes the very same ids and can never charge twice.
RUN_NAMESPACE = uuid.UUID("2d6c1f0e-8b5a-4f3c-9e27-5a4d3c2b1a09")


class ScheduleKind(enum.StrEnum):
    # A share of each balance above a threshold, each period (a currency "melts").
    DEMURRAGE = "demurrage"
    # All of each balance above a cap, each period (a time bank limits hoarding).
    HOURS_EXPIRY = "hours_expiry"
    # A fixed amount from each member's (or organization's) account.
    MEMBERSHIP_FEE = "membership_fee"
    # A fixed amount from one account, given each period.
    RECURRING_DONATION = "recurring_donation"
    # Members' credit (how far below zero they may go) grows with hours earned.
    CREDIT_GROWTH = "credit_growth"
    # A fixed amount from a pool to each member, once, when they have joined.
    WELCOME_GRANT = "welcome_grant"


TRANSACTION_KINDS: dict[ScheduleKind, TransactionKind] = {
    ScheduleKind.DEMURRAGE: TransactionKind.DEMURRAGE,
    ScheduleKind.HOURS_EXPIRY: TransactionKind.DEMURRAGE,
    ScheduleKind.MEMBERSHIP_FEE: TransactionKind.FEE,
    ScheduleKind.RECURRING_DONATION: TransactionKind.DONATION,
    ScheduleKind.WELCOME_GRANT: TransactionKind.GRANT,
}
EXCESS_KINDS = frozenset({ScheduleKind.DEMURRAGE, ScheduleKind.HOURS_EXPIRY})


@dataclass(frozen=True, slots=True)
class Schedule:
    id: uuid.UUID
    community_id: uuid.UUID
    kind: ScheduleKind
    unit_code: str
    period: Period
    starts_on: date
    # The account credited; None for credit growth, which moves nothing.
    target_account: uuid.UUID | None
    rate_bps: int | None = None
    threshold: int | None = None
    amount: int | None = None
    payer_kind: str | None = None
    source_account: uuid.UUID | None = None
    grace_days: int = 0
    created_at: datetime | None = None
    retired_at: datetime | None = None


def validate_schedule(schedule: Schedule) -> None:
    """The fields each kind needs, and only those; amounts the ledger accepts."""
    if not is_boundary(schedule.period, schedule.starts_on):
        raise ValidationError(
            f"starts_on must start a {schedule.period.value} (a Monday for weeks, the"
            " first day of a month, quarter or year)",
            field="starts_on",
        )
    if schedule.kind is ScheduleKind.CREDIT_GROWTH:
        if schedule.threshold is None or not -AMOUNT_MAX <= schedule.threshold <= 0:
            raise ValidationError(
                "threshold is the lowest minimum credit growth may reach (0 or below)",
                field="threshold",
            )
        if schedule.rate_bps is None or not 1 <= schedule.rate_bps <= BASIS_POINTS:
            raise ValidationError("rate_bps is 1 to 10,000", field="rate_bps")
        if schedule.target_account is not None or schedule.amount is not None:
            raise ValidationError("credit growth moves nothing: no target", field="target")
        return
    if schedule.kind is ScheduleKind.WELCOME_GRANT:
        if schedule.amount is None or not 1 <= schedule.amount <= AMOUNT_MAX:
            raise ValidationError(f"amount is 1 to {AMOUNT_MAX}", field="amount")
        if schedule.source_account is None or schedule.target_account is not None:
            raise ValidationError(
                "a welcome grant comes from a source (a pool's account) to each member",
                field="source",
            )
        return
    if schedule.target_account is None:
        raise ValidationError("the account credited is needed", field="target")
    if schedule.kind in EXCESS_KINDS:
        if schedule.threshold is None or abs(schedule.threshold) > AMOUNT_MAX:
            raise ValidationError("a threshold is needed", field="threshold")
        rate = BASIS_POINTS if schedule.kind is ScheduleKind.HOURS_EXPIRY else schedule.rate_bps
        if rate is None or not 1 <= rate <= BASIS_POINTS:
            raise ValidationError("rate_bps is 1 to 10,000", field="rate_bps")
        if schedule.amount is not None or schedule.source_account is not None:
            raise ValidationError("demurrage and expiry take a rate, not an amount", field="amount")
        return
    if schedule.amount is None or not 1 <= schedule.amount <= AMOUNT_MAX:
        raise ValidationError(f"amount is 1 to {AMOUNT_MAX}", field="amount")
    if schedule.rate_bps is not None or schedule.threshold is not None:
        raise ValidationError("fees and donations take an amount, not a rate", field="rate_bps")
    if schedule.kind is ScheduleKind.MEMBERSHIP_FEE and schedule.payer_kind not in (
        "member",
        "organization",
    ):
        raise ValidationError("payer_kind is member or organization", field="payer_kind")
    if schedule.kind is ScheduleKind.RECURRING_DONATION and schedule.source_account is None:
        raise ValidationError("a recurring donation names its source account", field="source")


def charge_id(schedule_id: uuid.UUID, period_start: date, account_id: uuid.UUID) -> uuid.UUID:
    """The transaction of this schedule, period and account: the same on any retry."""
    return uuid.uuid5(RUN_NAMESPACE, f"{schedule_id}/{period_start.isoformat()}/{account_id}")


def excess_charge(balance: int, threshold: int, rate_bps: int, available: int) -> int:
    """What demurrage or expiry takes from a balance: rate_bps / 10,000 of what is
    above the threshold, rounded down, at most what the account can give. The same
    rule as the SQL of policy_excess_charges, which the tests hold to this one."""
    if balance <= threshold:
        return 0
    return max(0, min((balance - threshold) * rate_bps // BASIS_POINTS, available))
