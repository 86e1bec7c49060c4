"""A small demo community, with members, an organization, a solidarity pool,
a system account and some history, so a newcomer sees a living ledger."""

from __future__ import annotations

import secrets
import unicodedata
import uuid

import structlog

from timebank.auth.access import Role
from timebank.auth.directory import AccountRef, Directory
from timebank.ledger.errors import UnknownCommunity
from timebank.ledger.models import (
    Account,
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


DEMO_PASSWORD_BYTES = 12
DEMO_EMAIL_DOMAIN = "demo.timebank.example"
DEMO_PEOPLE = (
    ("Alice Martin", Role.ADMIN),
    ("Bernard Petit", Role.TREASURER),
    ("Chloé Durand", Role.MEMBER),
    ("Dimitri Moreau", Role.MEMBER),
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


async def _main_accounts(
    store: LedgerStore, refs: tuple[AccountRef, ...]
) -> tuple[Account, Account]:
    """The hours and gonettes main accounts among a party's accounts."""
    by_unit = {ref.unit_code: ref.id for ref in refs if ref.purpose == "main"}
    return await store.account(by_unit["H"]), await store.account(by_unit["G"])


async def create_demo_community(store: LedgerStore, directory: Directory) -> None:
    """Creates the demo community once; does nothing when it already exists."""
    try:
        await store.community_by_slug(DEMO_SLUG)
    except UnknownCommunity:
        pass
    else:
        logger.info("demo_community_exists", slug=DEMO_SLUG)
        return

    community = await store.create_community(DEMO_SLUG, "Banque de temps du quartier")
    hours = await directory.create_unit(
        community.id,
        code="H",
        name="Heures",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=-10 * HOUR_MINUTES,
        default_max_balance=40 * HOUR_MINUTES,
    )
    gonettes = await directory.create_unit(
        community.id,
        code="G",
        name="Gonettes",
        kind=UnitKind.CURRENCY,
        decimals=2,
        default_min_balance=0,
        default_max_balance=5_000 * CENTS_PER_GONETTE,
    )
    # One password for the demo's people, made now and shown once: nothing secret
    # lives in the code.
    password = secrets.token_urlsafe(DEMO_PASSWORD_BYTES)
    members: dict[str, tuple[Account, Account]] = {}
    people: list[tuple[str, str, Role]] = []
    for name, role in DEMO_PEOPLE:
        first_name = name.split()[0]
        email = f"{_ascii(first_name).lower()}@{DEMO_EMAIL_DOMAIN}"
        member = await directory.create_member(
            community.id, email=email, display_name=name, password=password, role=role
        )
        members[first_name] = await _main_accounts(store, member.accounts)
        people.append((email, name, role))
    organization = await directory.create_organization(
        community.id, name="Café des Voisins", kind="business"
    )
    cafe = await _main_accounts(store, organization.accounts)
    dimitri_party = (await store.account(members["Dimitri"][0].id)).owner_id
    await directory.add_agent(community.id, organization.party_id, dimitri_party)
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
    lines = [f"  {email:<34} {name} ({role.value})" for email, name, role in people]
    print(
        "Demo community 'demo' created. Log in at POST /v1/auth/token with one of:\n"
        + "\n".join(lines)
        + f"\nand the password (shown only now): {password}\n"
        "The API's documentation: /v1/docs",
        flush=True,
    )
