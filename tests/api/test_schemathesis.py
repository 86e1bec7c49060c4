"""The API against its own OpenAPI document, fuzzed by schemathesis with an admin's
token: no answer is a 5xx, and every answer (status, content type, headers, body)
is one the document declares. Then hostile requests (invalid ones, any without a
token, any on another community with its real ids): no 5xx, and the ledgers of
both communities are exactly as they were."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from tests.api.world import PASSWORD
from tests.live_server import ThreadedServer
from timebank.api.contract import openapi_document
from timebank.api.problems import code_meanings
from timebank.api.registry import api as contract
from timebank.app import create_app
from timebank.keys import DATABASE_POOL, IDENTITIES
from timebank.settings import Settings

# The contract as the service publishes it, built without a server so that the
# cases can be generated when the tests are collected.
create_app  # noqa: B018 (importing the app declares every operation on the contract)
schema = schemathesis.openapi.from_dict(
    openapi_document(contract, version="test", error_codes=code_meanings())
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25
T = TypeVar("T")


@dataclass(frozen=True)
class LiveService:
    base_url: str
    headers: dict[str, str]
    slug: str
    ids: dict[str, str]
    # Another community, where the admin above is nobody, and its real ids.
    other_slug: str
    other_ids: tuple[str, ...]
    database: ThreadedServer


@pytest.fixture(scope="module")
def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The real application on loopback, with a community, an admin and some history."""
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    server = ThreadedServer(create_app(settings.model_copy(update={"data_dir": data_dir})))
    server.start()
    try:
        email = f"op-{uuid.uuid4().hex[:8]}@example.org"
        assert server.run(server.app[IDENTITIES].create_operator(email, PASSWORD, "Operator"))
        with requests.Session() as http:
            yield _populate(http, server, email)
    finally:
        server.stop()


def _populate(http: requests.Session, server: ThreadedServer, email: str) -> LiveService:
    base_url = server.base_url

    def call(method: str, path: str, token: str | None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = http.request(method, base_url + path, headers=headers, timeout=30, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def login(who: str) -> str:
        body = call(
            "POST",
            "/v1/auth/token",
            None,
            data={"grant_type": "password", "username": who, "password": PASSWORD},
        )
        return str(body["access_token"])

    def community_with_history() -> tuple[str, str, dict[str, Any], str]:
        """A community, its admin (logged in), the admin's membership and a transfer."""
        slug = f"fuzz-{uuid.uuid4().hex[:8]}"
        call("POST", "/v1/communities", operator, json={"slug": slug, "name": "Fuzz"})
        call(
            "POST",
            f"/v1/communities/{slug}/units",
            operator,
            json={
                "code": "HOUR",
                "name": "Hours",
                "kind": "time",
                "default_min_balance": -600,
                "default_max_balance": 6000,
            },
        )
        admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.org"
        admin = call(
            "POST",
            f"/v1/communities/{slug}/members",
            operator,
            json={
                "email": admin_email,
                "display_name": "Admin",
                "password": PASSWORD,
                "role": "admin",
            },
        )
        token = login(admin_email)
        member = call(
            "POST",
            f"/v1/communities/{slug}/members",
            token,
            json={"email": f"m-{uuid.uuid4().hex[:8]}@example.org", "display_name": "Member"},
        )
        transaction_id = str(uuid.uuid4())
        call(
            "POST",
            "/v1/transactions",
            token,
            json={
                "id": transaction_id,
                "community": slug,
                "unit": "HOUR",
                "from": admin["accounts"][0]["id"],
                "to": member["accounts"][0]["id"],
                "amount": 5,
            },
        )
        return slug, token, admin, transaction_id

    operator = login(email)
    slug, token, admin, transaction_id = community_with_history()
    other_slug, _, other_admin, other_transaction_id = community_with_history()
    return LiveService(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        slug=slug,
        ids={"id": admin["accounts"][0]["id"], "transaction": transaction_id},
        other_slug=other_slug,
        other_ids=(other_admin["accounts"][0]["id"], other_transaction_id, other_admin["party_id"]),
        database=server,
    )


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_contract(case: schemathesis.Case[Any], live: LiveService) -> None:
    """Fuzzed requests (on the real community for paths that name one) get declared
    answers, never a server error."""
    if "slug" in case.path_parameters:
        case.path_parameters["slug"] = live.slug
    case.call_and_validate(base_url=live.base_url, headers=live.headers, checks=CHECKS)


# Hostile requests: what the fuzzer sends, and as whom.
INVALID = "invalid, with the admin's token"
ANONYMOUS = "any, without a token"
ELSEWHERE = "any, with the admin's token, on another community and its ids"
HOSTILE_EXAMPLES = 400
LEDGER_FINGERPRINT = """
SELECT (SELECT count(*) FROM transactions WHERE community_id = ANY ($1::uuid[])) AS transactions,
       (SELECT count(*) FROM transactions WHERE community_id = ANY ($1::uuid[])
           AND state = 'pending') AS pending,
       (SELECT count(*) FROM postings WHERE community_id = ANY ($1::uuid[])) AS postings,
       (SELECT count(*) FROM accounts WHERE community_id = ANY ($1::uuid[])) AS accounts,
       (SELECT array_agg(balance ORDER BY id) FROM accounts
         WHERE community_id = ANY ($1::uuid[])) AS balances,
       (SELECT array_agg(min_balance || ':' || max_balance || ':' || status ORDER BY id)
          FROM accounts WHERE community_id = ANY ($1::uuid[])) AS limits,
       (SELECT count(*) FROM units WHERE community_id = ANY ($1::uuid[])) AS units,
       (SELECT count(*) FROM parties WHERE community_id = ANY ($1::uuid[])) AS parties,
       (SELECT count(*) FROM log_entries WHERE community_id = ANY ($1::uuid[])) AS log_entries
"""


def invalid_in_its_body(case: schemathesis.Case[Any]) -> bool:
    """Negative in its body. The test sets the slug and the token itself, which
    would make a case negative only in its path or headers a valid request; and
    the API ignores query parameters it does not know (by design), which
    schemathesis counts as invalid (the contract test fuzzes queries)."""
    components = case.meta.components if case.meta is not None else {}
    info = components.get(ParameterLocation.BODY)
    return info is not None and info.mode is GenerationMode.NEGATIVE


hostile = st.one_of(
    st.tuples(
        st.just(INVALID),
        schema.as_strategy(GenerationMode.NEGATIVE).filter(invalid_in_its_body),
    ),
    *(
        st.tuples(st.just(who), schema.as_strategy(mode))
        for who in (ANONYMOUS, ELSEWHERE)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ),
)


def ledger_of(live: LiveService) -> dict[str, Any]:
    """What the two communities' ledgers hold, compared before and after."""
    pool = live.database.app[DATABASE_POOL]

    async def read() -> dict[str, Any]:
        ids = await pool.fetch(
            "SELECT id FROM communities WHERE slug = ANY ($1::text[])",
            [live.slug, live.other_slug],
        )
        row = await pool.fetchrow(LEDGER_FINGERPRINT, [row["id"] for row in ids])
        assert row is not None
        return dict(row)

    return live.database.run(read())


def test_hostile_requests_change_nothing(live: LiveService) -> None:
    """Invalid requests (schemathesis' negative cases, invalid in their body:
    wrong types, out of range and huge numbers, unicode, missing or extra fields)
    with an admin's token on the real community;
    any request without a token; any request by that admin on another community
    with that community's real ids: none is a 5xx, an invalid one is never
    accepted, and afterwards neither community's ledger (transactions, postings,
    accounts, balances, limits, units, parties, log) has changed."""
    before = ledger_of(live)
    answered: Counter[tuple[str, int]] = Counter()
    accepted: list[str] = []

    @hypothesis.given(hostile, st.sampled_from(live.other_ids))
    @hypothesis.settings(
        max_examples=HOSTILE_EXAMPLES,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
    )
    def send(drawn: tuple[str, schemathesis.Case[Any]], other_id: str) -> None:
        who, case = drawn
        headers = dict(live.headers)
        if "slug" in case.path_parameters:
            case.path_parameters["slug"] = live.other_slug if who == ELSEWHERE else live.slug
        if who == ELSEWHERE:
            for name in case.path_parameters:
                if name != "slug":
                    case.path_parameters[name] = other_id
        if who == ANONYMOUS:
            headers = {}
            if case.headers:
                case.headers.pop("Authorization", None)
        checks = [not_a_server_error] + ([negative_data_rejection] if who == INVALID else [])
        response = case.call_and_validate(base_url=live.base_url, headers=headers, checks=checks)
        answered[(who, response.status_code // 100)] += 1
        if response.status_code < 300 and case.method != "GET":
            accepted.append(f"{who}: {case.method} {case.formatted_path} {response.status_code}")

    send()
    assert ledger_of(live) == before, (dict(answered), accepted)
    assert {who for who, _ in answered} == {INVALID, ANONYMOUS, ELSEWHERE}
