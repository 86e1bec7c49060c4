"""The API against its own OpenAPI document, fuzzed by schemathesis with an admin's
token: no answer is a 5xx, and every answer (status, content type, headers, body)
is one the document declares."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.world import PASSWORD
from tests.live_server import ThreadedServer
from timebank.api.contract import openapi_document
from timebank.api.problems import code_meanings
from timebank.api.registry import api as contract
from timebank.app import create_app
from timebank.keys import IDENTITIES
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
            yield _populate(http, server.base_url, email)
    finally:
        server.stop()


def _populate(http: requests.Session, base_url: str, email: str) -> LiveService:
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

    operator = login(email)
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
        json={"email": admin_email, "display_name": "Admin", "password": PASSWORD, "role": "admin"},
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
    return LiveService(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        slug=slug,
        ids={"id": admin["accounts"][0]["id"], "transaction": transaction_id},
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
