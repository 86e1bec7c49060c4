"""A small demo community, with members, a business, an exchange office, a
solidarity pool with a levy and a request for help, gonettes backed by euros
with demurrage, and some history, so a newcomer sees a living ledger."""

from __future__ import annotations

import secrets
import unicodedata
import uuid
from datetime import UTC, date, datetime

import structlog

from timebank.auth.access import Role
from timebank.auth.directory import AccountRef
from timebank.ledger.errors import UnknownCommunity
from timebank.ledger.models import (
    Account,
    TransactionKind,
    TransactionRequest,
    UnitKind,
)
from timebank.ledger.store import LedgerStore
from timebank.policies.models import Schedule, ScheduleKind
from timebank.policies.periods import Period
from timebank.pools.models import Charter, Decision, LevyPayer, UnitTerms, with_levy
from timebank.pools.store import Pool
from timebank.services import Services

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


async def _economics(
    services: Services,
    community_id: uuid.UUID,
    members: dict[str, tuple[Account, Account]],
    office_id: uuid.UUID,
) -> Pool:
    """A solidarity pool (hours and gonettes) run by Alice and Bernard, a 2% levy
    on purchases in gonettes for it, gonettes backed by euros (3% reconversion
    fee), and demurrage of 2% a quarter on gonettes above 50 into the pool."""
    store = services.ledger
    alice = (await store.account(members["Alice"][0].id)).owner_id
    bernard = (await store.account(members["Bernard"][0].id)).owner_id
    pool = await services.pools.create_pool(
        community_id,
        "Fonds de solidarité",
        Charter(
            purpose="Des heures et des gonettes pour qui ne peut pas encore rendre",
            managers=frozenset({alice, bernard}),
            approvals_required=1,
            units=(
                UnitTerms(
                    "H", grant_max=3 * HOUR_MINUTES, beneficiary_period_max=10 * HOUR_MINUTES
                ),
                UnitTerms(
                    "G",
                    grant_max=20 * CENTS_PER_GONETTE,
                    beneficiary_period_max=60 * CENTS_PER_GONETTE,
                ),
            ),
        ),
    )
    await services.pools.set_levy(
        community_id,
        pool_id=pool.id,
        unit_code="G",
        category=None,
        rate_bps=200,
        fixed_amount=0,
        paid_by=LevyPayer.PAYER,
    )
    await services.currency.set_up(community_id, "G", reconversion_fee_bps=300, offices=[office_id])
    today = datetime.now(UTC).date()
    await services.policies.create_schedule(
        Schedule(
            id=uuid.uuid4(),
            community_id=community_id,
            kind=ScheduleKind.DEMURRAGE,
            unit_code="G",
            period=Period.QUARTER,
            starts_on=date(today.year, (today.month - 1) // 3 * 3 + 1, 1),
            target_account=pool.unit("G").account_id,
            rate_bps=200,
            threshold=50 * CENTS_PER_GONETTE,
        )
    )
    return pool


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


async def _main_accounts(
    store: LedgerStore, refs: tuple[AccountRef, ...]
) -> tuple[Account, Account]:
    """The hours and gonettes main accounts among a party's accounts."""
    by_unit = {ref.unit_code: ref.id for ref in refs if ref.purpose == "main"}
    return await store.account(by_unit["H"]), await store.account(by_unit["G"])


async def create_demo_community(services: Services) -> None:
    """Creates the demo community once; does nothing when it already exists."""
    store, directory = services.ledger, services.directory
    try:
        await store.community_by_slug(DEMO_SLUG)
    except UnknownCommunity:
        pass
    else:
        logger.info("demo_community_exists", slug=DEMO_SLUG)
        return

    community = await store.create_community(DEMO_SLUG, "Banque de temps du quartier")
    await directory.create_unit(
        community.id,
        code="H",
        name="Heures",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=-10 * HOUR_MINUTES,
        default_max_balance=40 * HOUR_MINUTES,
    )
    await directory.create_unit(
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
    exchange_office = await directory.create_organization(
        community.id, name="Bureau de change de la Croix-Rousse", kind="association"
    )
    await directory.add_agent(
        community.id,
        exchange_office.party_id,
        (await store.account(members["Bernard"][0].id)).owner_id,
    )
    pool = await _economics(services, community.id, members, exchange_office.party_id)
    pool_hours = pool.unit("H").account_id

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
            to_account=pool_hours,
            amount=30,
            kind=TransactionKind.DONATION,
            memo="Don au fonds de solidarité",
        ),
    ]
    await store.post_atomic(history)
    # Gonettes are backed by euros: the exchange office issues them.
    await services.currency.issue(
        community.id,
        _demo_id("issuance"),
        unit_code="G",
        office_id=exchange_office.party_id,
        to_account=dimitri[1].id,
        amount=50 * CENTS_PER_GONETTE,
    )
    # A purchase in gonettes bears the community's levy (2%, to the pool).
    (levy,) = await services.pools.levy_rules(community.id, fresh=True)
    await store.post(
        with_levy(
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
            levy,
        )
    )
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
    chloe_party = (await store.account(chloe[0].id)).owner_id
    request, _ = await services.pools.ask(
        community.id,
        _demo_id("help"),
        pool_id=pool.id,
        beneficiary_id=chloe_party,
        unit_code="H",
        amount=20,
        reason="Aide pour les courses pendant ma convalescence",
    )
    alice_party = (await store.account(alice[0].id)).owner_id
    await services.pools.decide(
        community.id, request.id, pool_id=pool.id, manager_id=alice_party, decision=Decision.APPROVE
    )
    logger.info("demo_community_created", slug=DEMO_SLUG, community_id=str(community.id))
    lines = [f"  {email:<34} {name} ({role.value})" for email, name, role in people]
    print(
        "Demo community 'demo' created. Log in at POST /v1/auth/token with one of:\n"
        + "\n".join(lines)
        + f"\nand the password (shown only now): {password}\n"
        "The API's documentation: /v1/docs",
        flush=True,
    )
