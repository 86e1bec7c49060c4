"""A small demo community, with members, an organization, a solidarity pool,
a system account and some history, so a newcomer sees a living ledger."""

from __future__ import annotations

import uuid

import structlog

from timebank.ledger.errors import UnknownCommunity
from timebank.ledger.models import (
    Account,
    Party,
    PartyKind,
    Posting,
    TransactionKind,
    TransactionRequest,
    UnitKind,
)
from timebank.ledger.store import LedgerStore

logger = structlog.get_logger(__name__)

DEMO_SLUG = "demo"
# Fixed ids make the demo's history idempotent: running it twice writes it once.
DEMO_NAMESPACE = uuid.UUID("0b7d8c3e-6a55-4f0e-8d7a-2f4a7f1e9c01")
HOUR_MINUTES = 60
CENTS_PER_GONETTE = 100


def _demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, name)


async def create_demo_community(store: LedgerStore) -> None:
    """Creates the demo community once; does nothing when it already exists."""
    try:
        await store.community_by_slug(DEMO_SLUG)
    except UnknownCommunity:
        pass
    else:
        logger.info("demo_community_exists", slug=DEMO_SLUG)
        return

    community = await store.create_community(DEMO_SLUG, "Banque de temps du quartier")
    hours = await store.create_unit(
        community.id,
        code="H",
        name="Heures",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=-10 * HOUR_MINUTES,
        default_max_balance=40 * HOUR_MINUTES,
    )
    gonettes = await store.create_unit(
        community.id,
        code="G",
        name="Gonettes",
        kind=UnitKind.CURRENCY,
        decimals=2,
        default_min_balance=0,
        default_max_balance=5_000 * CENTS_PER_GONETTE,
    )

    async def open_accounts(party: Party) -> tuple[Account, Account]:
        hour_account = await store.open_account(community.id, owner_id=party.id, unit_id=hours.id)
        gonette_account = await store.open_account(
            community.id, owner_id=party.id, unit_id=gonettes.id
        )
        return hour_account, gonette_account

    members = {}
    for name in ("Alice Martin", "Bernard Petit", "Chloé Durand", "Dimitri Moreau"):
        party = await store.create_party(community.id, PartyKind.MEMBER, name)
        members[name.split()[0]] = await open_accounts(party)
    cafe = await open_accounts(
        await store.create_party(community.id, PartyKind.ORGANIZATION, "Café des Voisins")
    )
    pool_party = await store.create_party(community.id, PartyKind.POOL, "Fonds de solidarité")
    pool_hours = await store.open_account(
        community.id, owner_id=pool_party.id, unit_id=hours.id, min_balance=0
    )
    community_party = await store.community_party(community.id)
    issuance = await store.open_account(
        community.id,
        owner_id=community_party.id,
        unit_id=gonettes.id,
        purpose="issuance",
        min_balance=-(2**62),
    )

    def exchange(
        name: str, payer: Account, payee: Account, minutes: int, memo: str, category: str
    ) -> TransactionRequest:
        return TransactionRequest.transfer(
            id=_demo_id(name),
            community_id=community.id,
            unit_code="H",
            from_account=payer.id,
            to_account=payee.id,
            amount=minutes,
            memo=memo,
            category=category,
        )

    alice, bernard, chloe, dimitri = (members[n] for n in ("Alice", "Bernard", "Chloé", "Dimitri"))
    history = [
        exchange("garden", bernard[0], alice[0], 90, "Taille de la haie", "jardinage"),
        exchange("repair", chloe[0], dimitri[0], 60, "Réparation d'un vélo", "bricolage"),
        exchange("lesson", alice[0], chloe[0], 45, "Cours de français", "soutien scolaire"),
        TransactionRequest.transfer(
            id=_demo_id("donation"),
            community_id=community.id,
            unit_code="H",
            from_account=alice[0].id,
            to_account=pool_hours.id,
            amount=30,
            kind=TransactionKind.DONATION,
            memo="Don au fonds de solidarité",
        ),
        TransactionRequest(
            id=_demo_id("issuance"),
            community_id=community.id,
            kind=TransactionKind.ISSUANCE,
            postings=(
                Posting(issuance.id, -(50 * CENTS_PER_GONETTE)),
                Posting(dimitri[1].id, 50 * CENTS_PER_GONETTE),
            ),
            unit_code="G",
            memo="Change de 50 € en gonettes",
        ),
        TransactionRequest.transfer(
            id=_demo_id("coffee"),
            community_id=community.id,
            unit_code="G",
            from_account=dimitri[1].id,
            to_account=cafe[1].id,
            amount=450,
            kind=TransactionKind.TRANSFER,
            memo="Deux cafés et un gâteau",
        ),
    ]
    await store.post_atomic(history)
    await store.post(
        TransactionRequest.transfer(
            id=_demo_id("lift-pending"),
            community_id=community.id,
            unit_code="H",
            from_account=dimitri[0].id,
            to_account=bernard[0].id,
            amount=40,
            memo="Trajet jusqu'à l'hôpital",
            category="transport",
            pending=True,
        )
    )
    await store.reverse(community.id, _demo_id("lesson"), memo="Saisie en double")
    logger.info("demo_community_created", slug=DEMO_SLUG, community_id=str(community.id))
