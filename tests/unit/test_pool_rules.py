"""The pools' pure rules: levy rounding (whole steps, never above the rate, nothing
created or lost), the k-of-n rule, caps and eligibility, charters."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.ledger.models import AMOUNT_MAX, TransactionKind, TransactionRequest
from timebank.pools.errors import (
    AmountTooSmallForLevy,
    CharterInvalid,
    NotEligible,
    PoolCapExceeded,
)
from timebank.pools.models import (
    LEVIED_KINDS,
    Charter,
    LevyPayer,
    LevyRule,
    RequestState,
    UnitTerms,
    check_grant,
    levy_amount,
    levy_shares,
    request_outcome,
    rule_for,
    validate_charter,
    with_levy,
)

POOL_ACCOUNT = uuid.uuid4()


def rule(
    rate_bps: int = 0,
    fixed_amount: int = 0,
    paid_by: LevyPayer = LevyPayer.PAYER,
    category: str | None = None,
) -> LevyRule:
    return LevyRule(
        id=uuid.uuid4(),
        unit_code="HOUR",
        category=category,
        pool_id=uuid.uuid4(),
        account_id=POOL_ACCOUNT,
        rate_bps=rate_bps,
        fixed_amount=fixed_amount,
        paid_by=paid_by,
    )


@given(
    amount=st.integers(1, 10**12),
    rate_bps=st.integers(0, 10_000),
    fixed_amount=st.integers(0, 10**6),
    paid_by=st.sampled_from(list(LevyPayer)),
)
def test_levy_shares_are_whole_steps_that_sum_to_the_levy_and_never_exceed_the_rate(
    amount: int, rate_bps: int, fixed_amount: int, paid_by: LevyPayer
) -> None:
    """Rounded down: levy * 10,000 <= amount * rate + fixed * 10,000, and less than
    one step below it; the shares are non-negative and add up to the levy; a split
    gives the payer the odd step."""
    levy_rule = rule(rate_bps, fixed_amount, paid_by)
    levy = levy_amount(levy_rule, amount)
    assert (levy - fixed_amount) * 10_000 <= amount * rate_bps
    assert amount * rate_bps < (levy - fixed_amount + 1) * 10_000
    payer_share, payee_share = levy_shares(levy_rule, amount)
    assert payer_share + payee_share == levy
    assert min(payer_share, payee_share) >= 0
    if paid_by is LevyPayer.SPLIT:
        assert payer_share - payee_share in (0, 1)


@given(
    amount=st.integers(1, 10**9),
    rate_bps=st.integers(0, 10_000),
    paid_by=st.sampled_from(list(LevyPayer)),
)
def test_a_levied_transfer_balances_and_keeps_the_clients_fingerprint(
    amount: int, rate_bps: int, paid_by: LevyPayer
) -> None:
    """The levy's legs balance, and the fingerprint is the client's request's."""
    request = TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=uuid.uuid4(),
        unit_code="HOUR",
        from_account=uuid.uuid4(),
        to_account=uuid.uuid4(),
        amount=amount,
    )
    try:
        levied = with_levy(request, rule(rate_bps, 0, paid_by))
    except AmountTooSmallForLevy:
        assert paid_by is not LevyPayer.PAYER
        return
    assert sum(posting.amount for posting in levied.postings) == 0
    assert levied.fingerprint() == request.fingerprint()
    if len(levied.postings) == 3:
        payer, payee, pool = levied.postings
        assert pool.account_id == POOL_ACCOUNT
        assert -payer.amount >= amount >= payee.amount > 0


def test_figures_stated_in_the_docs() -> None:
    """5% of 61 minutes is 3 (3.05 rounded down): 64 paid, 61 received by the payee."""
    assert levy_shares(rule(500), 61) == (3, 0)
    assert levy_shares(rule(500, paid_by=LevyPayer.SPLIT), 61) == (2, 1)
    assert levy_shares(rule(500, paid_by=LevyPayer.PAYEE), 19) == (0, 0)
    assert levy_shares(rule(100, 2), 250) == (4, 0)


def test_a_payee_levy_that_takes_everything_is_refused() -> None:
    """A levy paid by the payee must leave them something of the amount."""
    request = TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=uuid.uuid4(),
        unit_code="HOUR",
        from_account=uuid.uuid4(),
        to_account=uuid.uuid4(),
        amount=5,
    )
    with pytest.raises(AmountTooSmallForLevy):
        with_levy(request, rule(0, 5, LevyPayer.PAYEE))


def test_the_categorys_rule_wins_over_the_units_general_rule() -> None:
    """The category's own rule, else the unit's rule for every category."""
    general, garden = rule(100), rule(500, category="garden")
    assert rule_for([general, garden], "HOUR", "garden") is garden
    assert rule_for([general, garden], "HOUR", "repair") is general
    assert rule_for([general, garden], "HOUR", None) is general
    assert rule_for([garden], "HOUR", None) is None
    assert rule_for([general], "EUR", None) is None


@given(
    managers=st.integers(1, 20),
    data=st.data(),
)
def test_k_of_n_pays_at_k_approvals_and_declines_once_k_is_out_of_reach(
    managers: int, data: st.DataObject
) -> None:
    """Decisions in any order: the request is paid exactly when approvals reach k,
    declined exactly when the managers left cannot reach k, open otherwise."""
    required = data.draw(st.integers(1, managers))
    decisions = data.draw(st.lists(st.booleans(), max_size=managers))
    approvals = declines = 0
    state = RequestState.OPEN
    for approve in decisions:
        if state is not RequestState.OPEN:
            break
        approvals += approve
        declines += not approve
        state = request_outcome(approvals, declines, approvals_required=required, managers=managers)
    if approvals >= required:
        assert state is RequestState.PAID
    elif managers - declines < required:
        assert state is RequestState.DECLINED
    else:
        assert state is RequestState.OPEN


TERMS = UnitTerms("HOUR", grant_max=120, beneficiary_period_max=180, eligible_at_or_below=0)


def test_caps_and_eligibility_name_what_refuses() -> None:
    """Each refusal names its cap or its reason, for the member to understand."""
    grant = {
        "granted_in_period": 0,
        "beneficiary_balance": 0,
        "referred": False,
        "requires_referral": False,
    }
    check_grant(TERMS, amount=120, **grant)  # type: ignore[arg-type]
    with pytest.raises(PoolCapExceeded) as over:
        check_grant(TERMS, amount=121, **grant)  # type: ignore[arg-type]
    assert over.value.context["cap"] == "grant_max"
    with pytest.raises(PoolCapExceeded) as period:
        check_grant(TERMS, amount=61, **{**grant, "granted_in_period": 120})  # type: ignore[arg-type]
    assert period.value.context["cap"] == "beneficiary_period_max"
    with pytest.raises(NotEligible) as rich:
        check_grant(TERMS, amount=1, **{**grant, "beneficiary_balance": 1})  # type: ignore[arg-type]
    assert rich.value.context["reason"] == "balance"
    with pytest.raises(NotEligible) as unreferred:
        check_grant(TERMS, amount=1, **{**grant, "requires_referral": True})  # type: ignore[arg-type]
    assert unreferred.value.context["reason"] == "referral"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"approvals_required": 3}, "approvals_required"),
        ({"managers": frozenset()}, "managers"),
        ({"purpose": ""}, "purpose"),
        ({"period_days": 0}, "period_days"),
        ({"requires_referral": True}, "referrers"),
        ({"units": ()}, "units"),
        ({"units": (TERMS, TERMS)}, "units"),
        ({"units": (UnitTerms("HOUR", 0, 1),)}, "grant_max"),
        ({"units": (UnitTerms("HOUR", 1, AMOUNT_MAX + 1),)}, "beneficiary_period_max"),
    ],
)
def test_a_charter_that_cannot_work_is_refused_naming_its_field(
    change: dict[str, object], field: str
) -> None:
    """Too few managers for the threshold, a unit twice, a cap of zero..."""
    charter = {
        "purpose": "help",
        "managers": frozenset({uuid.uuid4(), uuid.uuid4()}),
        "approvals_required": 2,
        "units": (TERMS,),
    }
    validate_charter(Charter(**charter))  # type: ignore[arg-type]
    with pytest.raises(CharterInvalid) as refused:
        validate_charter(Charter(**{**charter, **change}))  # type: ignore[arg-type]
    assert refused.value.context["field"] == field


def test_levied_kinds_are_exchanges_and_transfers() -> None:
    """Donations, grants and fees already go where the community decided."""
    assert frozenset({TransactionKind.EXCHANGE, TransactionKind.TRANSFER}) == LEVIED_KINDS
