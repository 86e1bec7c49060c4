"""Small builders shared by the integration tests."""

from __future__ import annotations

import uuid

from timebank.ledger.models import Account, Posting, TransactionKind, TransactionRequest


def transfer(
    community_id: uuid.UUID,
    payer: Account,
    payee: Account,
    amount: int,
    *,
    unit_code: str = "H",
    pending: bool = False,
    expires_in_s: int | None = None,
    memo: str = "",
    transaction_id: uuid.UUID | None = None,
) -> TransactionRequest:
    return TransactionRequest.transfer(
        id=transaction_id or uuid.uuid4(),
        community_id=community_id,
        unit_code=unit_code,
        from_account=payer.id,
        to_account=payee.id,
        amount=amount,
        pending=pending,
        expires_in_s=expires_in_s,
        memo=memo,
    )


def postings(
    community_id: uuid.UUID,
    *legs: tuple[Account, int],
    kind: TransactionKind = TransactionKind.EXCHANGE,
    unit_code: str | None = None,
) -> TransactionRequest:
    return TransactionRequest(
        id=uuid.uuid4(),
        community_id=community_id,
        kind=kind,
        postings=tuple(Posting(account.id, amount) for account, amount in legs),
        unit_code=unit_code,
    )
