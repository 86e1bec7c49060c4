"""The ledger's pure rules: what is refused before the database is asked."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.ledger.errors import (
    ERRORS_BY_CODE,
    AccountsMustBeDifferent,
    AmountMustBePositive,
    BatchTooLarge,
    LimitExceeded,
    PostingsMustBalance,
    ValidationError,
    error_from_code,
)
from timebank.ledger.models import (
    AMOUNT_MAX,
    BATCH_SIZE_MAX,
    LIMIT_ABSOLUTE_MAX,
    MEMO_LENGTH_MAX,
    Posting,
    TransactionKind,
    TransactionRequest,
    default_reversal_id,
    limit_problem,
    validate_batch,
    validate_limits,
    validate_transaction,
)

COMMUNITY = uuid.UUID("00000000-0000-4000-8000-000000000001")
ALICE = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
BOB = uuid.UUID("00000000-0000-4000-8000-0000000000b0")
CAROL = uuid.UUID("00000000-0000-4000-8000-0000000000c0")
EXPIRY_MAX_S = 3600


def transfer(amount: object = 60, **overrides: object) -> TransactionRequest:
    arguments: dict[str, object] = {
        "id": uuid.uuid4(),
        "community_id": COMMUNITY,
        "unit_code": "H",
        "from_account": ALICE,
        "to_account": BOB,
        "amount": amount,
    }
    arguments.update(overrides)
    return TransactionRequest.transfer(**arguments)  # type: ignore[arg-type]


def with_postings(*postings: tuple[uuid.UUID, object], **overrides: object) -> TransactionRequest:
    arguments: dict[str, object] = {
        "id": uuid.uuid4(),
        "community_id": COMMUNITY,
        "kind": TransactionKind.EXCHANGE,
        "postings": tuple(Posting(account, amount) for account, amount in postings),  # type: ignore[arg-type]
    }
    arguments.update(overrides)
    return TransactionRequest(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [0, -1, -60])
def test_transfer_refuses_zero_or_negative_amounts(amount: int) -> None:
    """A transfer moves a positive amount; zero or negative is amount_must_be_positive."""
    with pytest.raises(AmountMustBePositive):
        transfer(amount)


@pytest.mark.parametrize("amount", [1.5, 60.0, "60", True, None, 1e3])
def test_transfer_refuses_non_integer_amounts(amount: object) -> None:
    """Amounts are integers end to end: floats (even whole), strings, booleans are refused."""
    with pytest.raises(ValidationError) as raised:
        transfer(amount)
    assert raised.value.code == "validation_error"
    assert raised.value.context["field"] == "amount"


def test_transfer_refuses_the_same_account_twice() -> None:
    """Paying oneself is accounts_must_be_different."""
    with pytest.raises(AccountsMustBeDifferent):
        transfer(to_account=ALICE)


def test_transfer_builds_a_debit_and_a_credit() -> None:
    """A transfer of n is a posting of -n on the payer and +n on the payee."""
    request = transfer(90)
    assert request.postings == (Posting(ALICE, -90), Posting(BOB, 90))


def test_postings_must_sum_to_zero() -> None:
    """Double entry: the postings of a transaction balance."""
    request = with_postings((ALICE, -60), (BOB, 50))
    with pytest.raises(PostingsMustBalance) as raised:
        validate_transaction(request, expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context == {"sum": -10}


def test_three_postings_that_balance_are_valid() -> None:
    """A payment plus a levy to a pool is one transaction of three postings."""
    validate_transaction(
        with_postings((ALICE, -100), (BOB, 95), (CAROL, 5)), expiry_max_s=EXPIRY_MAX_S
    )


@pytest.mark.parametrize(
    "postings",
    [
        ((ALICE, -60), (ALICE, 60)),
        ((ALICE, -60), (BOB, 30), (ALICE, 30)),
    ],
)
def test_postings_refuse_a_repeated_account(postings: tuple[tuple[uuid.UUID, int], ...]) -> None:
    """An account appears at most once in a transaction."""
    with pytest.raises(AccountsMustBeDifferent):
        validate_transaction(with_postings(*postings), expiry_max_s=EXPIRY_MAX_S)


def test_a_single_posting_is_refused() -> None:
    """A transaction has at least two postings."""
    with pytest.raises(ValidationError) as raised:
        validate_transaction(with_postings((ALICE, 0)), expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context["field"] == "postings"


@pytest.mark.parametrize("amount", [0, AMOUNT_MAX + 1, 2**63, 2**70])
def test_posting_amounts_are_non_zero_and_bounded(amount: int) -> None:
    """A posting moves a non-zero amount no larger than 2^53 - 1 (safe in JSON clients)."""
    request = with_postings((ALICE, -amount), (BOB, amount))
    with pytest.raises(AmountMustBePositive):
        validate_transaction(request, expiry_max_s=EXPIRY_MAX_S)


def test_posting_amount_at_the_bound_is_accepted() -> None:
    """The largest amount, 2^53 - 1, is accepted by the pure rules."""
    validate_transaction(
        with_postings((ALICE, -AMOUNT_MAX), (BOB, AMOUNT_MAX)), expiry_max_s=EXPIRY_MAX_S
    )


def test_float_posting_amounts_are_refused() -> None:
    """A fractional amount in a posting is a validation_error naming the field."""
    with pytest.raises(ValidationError) as raised:
        validate_transaction(with_postings((ALICE, -0.5), (BOB, 0.5)), expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context["field"] == "amount"


def test_memo_length_is_bounded() -> None:
    """A memo longer than the limit is refused."""
    with pytest.raises(ValidationError) as raised:
        validate_transaction(transfer(memo="x" * (MEMO_LENGTH_MAX + 1)), expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context["field"] == "memo"


def test_only_pending_transactions_expire() -> None:
    """expires_in_s on a transaction that is not pending is refused."""
    with pytest.raises(ValidationError) as raised:
        validate_transaction(transfer(expires_in_s=60), expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context["field"] == "expires_in_s"


@pytest.mark.parametrize("expires_in_s", [0, -5, EXPIRY_MAX_S + 1])
def test_pending_expiry_is_bounded(expires_in_s: int) -> None:
    """A pending transaction lives between 1 s and the configured maximum."""
    with pytest.raises(ValidationError):
        validate_transaction(
            transfer(pending=True, expires_in_s=expires_in_s), expiry_max_s=EXPIRY_MAX_S
        )


def test_reversal_kind_cannot_be_posted_directly() -> None:
    """A reversal is made by reversing a transaction, never posted as such."""
    with pytest.raises(ValidationError):
        validate_transaction(transfer(kind=TransactionKind.REVERSAL), expiry_max_s=EXPIRY_MAX_S)


def test_batch_size_is_bounded() -> None:
    """At most 1,000 transactions per batch: batch_too_large beyond."""
    with pytest.raises(BatchTooLarge) as raised:
        validate_batch([transfer() for _ in range(BATCH_SIZE_MAX + 1)], expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context == {"size": BATCH_SIZE_MAX + 1, "max_size": BATCH_SIZE_MAX}


def test_batch_refuses_repeated_ids() -> None:
    """One id names one transaction: a batch may not carry it twice."""
    first = transfer()
    with pytest.raises(ValidationError) as raised:
        validate_batch([first, transfer(id=first.id)], expiry_max_s=EXPIRY_MAX_S)
    assert raised.value.context["index"] == 1


def test_batch_refuses_several_communities() -> None:
    """A batch belongs to one community."""
    with pytest.raises(ValidationError):
        validate_batch([transfer(), transfer(community_id=uuid.uuid4())], expiry_max_s=EXPIRY_MAX_S)


def test_batch_names_the_index_of_an_invalid_item() -> None:
    """A validation error inside a batch says which item it is."""
    with pytest.raises(ValidationError) as raised:
        validate_batch(
            [transfer(), transfer(memo="x" * (MEMO_LENGTH_MAX + 1))], expiry_max_s=EXPIRY_MAX_S
        )
    assert raised.value.context["index"] == 1


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValidationError):
        validate_batch([], expiry_max_s=EXPIRY_MAX_S)


def test_fingerprint_ignores_the_id_and_sees_the_content() -> None:
    """Two requests with the same content fingerprint alike; any change shows."""
    request = transfer(90, memo="garden")
    same_content = transfer(90, memo="garden", id=uuid.uuid4())
    assert request.fingerprint() == same_content.fingerprint()
    for changed in (
        transfer(91, memo="garden"),
        transfer(90, memo="gardening"),
        transfer(90, memo="garden", pending=True),
        transfer(90, memo="garden", to_account=CAROL),
        transfer(90, memo="garden", unit_code="G"),
    ):
        assert changed.fingerprint() != request.fingerprint()


def test_default_reversal_id_is_stable() -> None:
    """Reversing the same transaction twice without an id names the same reversal."""
    original = uuid.uuid4()
    assert default_reversal_id(original) == default_reversal_id(original)
    assert default_reversal_id(original) != default_reversal_id(uuid.uuid4())


@pytest.mark.parametrize(
    ("min_balance", "max_balance"),
    [(1, 10), (-10, -1), (-(LIMIT_ABSOLUTE_MAX + 1), 0), (0, LIMIT_ABSOLUTE_MAX + 1), (0.0, 10)],
)
def test_limits_are_bounded_integers_around_zero(min_balance: int, max_balance: int) -> None:
    """min_balance <= 0 <= max_balance, integers within +/- 2^62."""
    with pytest.raises(ValidationError):
        validate_limits(min_balance, max_balance)


def test_limit_rule_counts_pending_debits_against_the_minimum() -> None:
    """available = balance - pending debits must stay >= min_balance."""
    account = {"balance": 0, "pending_debits": 500, "pending_credits": 0}
    limits = {"min_balance": -600, "max_balance": 600}
    assert limit_problem(**account, **limits, amount=-100, pending=False) is None
    assert limit_problem(**account, **limits, amount=-101, pending=False) == "min_balance"
    assert limit_problem(**account, **limits, amount=-101, pending=True) == "min_balance"


def test_limit_rule_counts_pending_credits_against_the_maximum() -> None:
    """balance + pending credits must stay <= max_balance."""
    account = {"balance": 100, "pending_debits": 0, "pending_credits": 400}
    limits = {"min_balance": -600, "max_balance": 600}
    assert limit_problem(**account, **limits, amount=100, pending=True) is None
    assert limit_problem(**account, **limits, amount=101, pending=True) == "max_balance"
    assert limit_problem(**account, **limits, amount=101, pending=False) == "max_balance"


@given(
    balance=st.integers(-600, 600),
    pending_debits=st.integers(0, 600),
    pending_credits=st.integers(0, 600),
    amount=st.integers(-2_000, 2_000).filter(bool),
    pending=st.booleans(),
)
def test_limit_rule_accepts_exactly_what_stays_within_limits(
    balance: int, pending_debits: int, pending_credits: int, amount: int, pending: bool
) -> None:
    """Accepted movements leave available >= min and committed <= max; refused ones don't."""
    min_balance, max_balance = -600, 600
    problem = limit_problem(
        balance=balance,
        pending_debits=pending_debits,
        pending_credits=pending_credits,
        min_balance=min_balance,
        max_balance=max_balance,
        amount=amount,
        pending=pending,
    )
    new_balance = balance + (0 if pending else amount)
    new_debits = pending_debits + (-amount if pending and amount < 0 else 0)
    new_credits = pending_credits + (amount if pending and amount > 0 else 0)
    fits = new_balance - new_debits >= min_balance and new_balance + new_credits <= max_balance
    assert (problem is None) == fits


def test_every_error_code_is_unique_and_rebuilds_its_error() -> None:
    """Codes are stable identifiers: one class per code, rebuilt from what SQL sends."""
    assert len(ERRORS_BY_CODE) == len({cls.code for cls in ERRORS_BY_CODE.values()})
    error = error_from_code(
        "limit_exceeded",
        {
            "account_id": "a",
            "limit": "min_balance",
            "limit_value": -600,
            "available": -500,
            "amount": -200,
            "exceeded_by": 100,
        },
    )
    assert isinstance(error, LimitExceeded)
    assert "exceeds it by 100" in error.detail


def test_fingerprint_tells_a_missing_field_from_any_text() -> None:
    """A category of None and a category spelled like an encoding artefact differ."""
    assert transfer(category=None).fingerprint() != transfer(category="\x00").fingerprint()
    assert transfer(memo="a", category="b").fingerprint() != transfer(memo="ab").fingerprint()


def test_fingerprint_encoding_is_fixed() -> None:
    """Fingerprints are stored with every transaction, so their encoding never
    changes (a retry of an old transaction would read as a conflict): the SHA-256
    of the prefix, the community, length-prefixed kind, memo, category, unit and
    expiry, the pending mark, the posting count and each posting's account and
    amount (8 bytes, signed)."""
    community = uuid.UUID("00000000-0000-4000-8000-000000000001")
    payer = uuid.UUID("00000000-0000-4000-8000-000000000002")
    payee = uuid.UUID("00000000-0000-4000-8000-000000000003")
    request = TransactionRequest(
        id=uuid.uuid4(),
        community_id=community,
        kind=TransactionKind.EXCHANGE,
        postings=(Posting(payer, -90), Posting(payee, 90)),
        memo="é",
        unit_code="H",
        pending=True,
        expires_in_s=60,
    )
    encoded = (
        b"timebank.transaction.1"
        + community.bytes
        + b"\x00\x00\x00\x08exchange"
        + b"\x00\x00\x00\x02\xc3\xa9"
        + b"\xff\xff\xff\xff"
        + b"\x00\x00\x00\x01H"
        + b"\x00\x00\x00\x0260"
        + b"p"
        + b"\x00\x02"
        + payer.bytes
        + (-90).to_bytes(8, "big", signed=True)
        + payee.bytes
        + (90).to_bytes(8, "big", signed=True)
    )
    assert hashlib.sha256(encoded).digest() == request.fingerprint()
    assert hashlib.sha256(encoded).digest() == replace(request, id=uuid.uuid4()).fingerprint()
