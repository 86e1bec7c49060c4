"""The published contract (OpenAPI document and its page) and the limits every
request meets."""

from __future__ import annotations

import io
import json
import re
import uuid

from tests.api.conftest import ApiClient
from tests.api.world import World, expect, transfer
from timebank.api.problems import all_codes
from timebank.api.registry import api as contract


async def test_the_openapi_document_lists_every_declared_operation(api: ApiClient) -> None:
    document = await expect(await api.get("/v1/openapi.json"), 200)
    assert document["openapi"] == "3.1.0"
    published = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert published == {(operation.method, operation.path) for operation in contract.operations}
    transfer_schema = document["components"]["schemas"]["TransferIn"]
    assert transfer_schema["properties"]["amount"]["type"] == "integer"
    assert transfer_schema["additionalProperties"] is False
    post = document["paths"]["/v1/transactions"]["post"]
    assert {"200", "201", "401", "403", "409", "422", "503"} <= set(post["responses"])
    assert "transaction_id_conflict" in post["responses"]["409"]["description"]


async def test_the_documentation_page_works_offline(api: ApiClient) -> None:
    """One self-contained page: no script, no stylesheet or font from elsewhere."""
    response = await api.get("/v1/docs")
    page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "<script" not in page
    assert not re.search(r"(src|href)=['\"]https?://", page)
    for operation in contract.operations:
        assert operation.path in page
    for code in all_codes():
        assert f"<code>{code}</code>" in page


async def test_a_body_too_large_is_refused_with_payload_too_large(
    api: ApiClient, world: World
) -> None:
    body = json.dumps(transfer(world, world.alice, world.bob, 1, memo="x" * (5 * 1024 * 1024)))
    response = await api.post(
        "/v1/transactions",
        data=io.BytesIO(body.encode()),
        headers={**world.alice.auth, "Content-Type": "application/json"},
    )
    assert (await expect(response, 413))["code"] == "payload_too_large"


async def test_a_body_that_is_not_json_is_unsupported(api: ApiClient, world: World) -> None:
    response = await api.post(
        "/v1/transactions", data="id=1", headers={**world.alice.auth, "Content-Type": "text/plain"}
    )
    problem = await expect(response, 415)
    assert problem["code"] == "unsupported_media_type"
    broken = await api.post(
        "/v1/transactions",
        data="{not json",
        headers={**world.alice.auth, "Content-Type": "application/json"},
    )
    assert (await expect(broken, 422))["code"] == "validation_error"


async def test_deep_nesting_and_unknown_fields_are_validation_errors(
    api: ApiClient, world: World
) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    response = await api.post(
        "/v1/transactions",
        data=deep,
        headers={**world.alice.auth, "Content-Type": "application/json"},
    )
    assert (await expect(response, 422))["code"] == "validation_error"
    body = {**transfer(world, world.alice, world.bob, 1), "colour": "blue"}
    problem = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 422
    )
    assert problem["errors"][0]["location"] == ["body", "transfer", "colour"]


async def test_a_batch_above_1000_is_batch_too_large(api: ApiClient, world: World) -> None:
    items = [transfer(world, world.alice, world.bob, 1) for _ in range(1001)]
    problem = await expect(
        await api.post(
            "/v1/transactions/batch",
            json={"atomic": True, "transactions": items},
            headers=world.alice.auth,
        ),
        422,
    )
    assert (problem["code"], problem["size"]) == ("batch_too_large", 1001)


async def test_a_batch_spanning_communities_is_refused(api: ApiClient, world: World) -> None:
    items = [
        transfer(world, world.alice, world.bob, 1),
        {**transfer(world, world.alice, world.bob, 1), "community": "elsewhere"},
    ]
    problem = await expect(
        await api.post(
            "/v1/transactions/batch",
            json={"atomic": True, "transactions": items},
            headers=world.alice.auth,
        ),
        422,
    )
    assert problem["code"] == "validation_error"


async def test_unknown_names_in_a_body_are_the_ledgers_codes(api: ApiClient, world: World) -> None:
    unknown_community = {**transfer(world, world.alice, world.bob, 1), "community": "elsewhere"}
    problem = await expect(
        await api.post("/v1/transactions", json=unknown_community, headers=world.alice.auth), 422
    )
    assert problem["code"] == "unknown_community"
    unknown_account = {**transfer(world, world.alice, world.bob, 1), "to": str(uuid.uuid4())}
    problem = await expect(
        await api.post("/v1/transactions", json=unknown_account, headers=world.alice.auth), 422
    )
    assert problem["code"] == "unknown_account"
    unknown_unit = {**transfer(world, world.alice, world.bob, 1), "unit": "NOPE"}
    problem = await expect(
        await api.post("/v1/transactions", json=unknown_unit, headers=world.alice.auth), 422
    )
    assert problem["code"] in {"unknown_unit", "unit_mismatch"}


async def test_every_answer_carries_a_request_id(api: ApiClient, world: World) -> None:
    response = await api.get("/v1/me", headers={**world.alice.auth, "X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42"
    wrong_method = await api.put("/v1/me", headers=world.alice.auth)
    problem = await expect(wrong_method, 405)
    assert (problem["code"], problem["request_id"]) == (
        "method_not_allowed",
        wrong_method.headers["X-Request-Id"],
    )


async def test_metrics_count_requests_by_route_and_transactions_by_kind(
    api: ApiClient, world: World
) -> None:
    """/metrics (Prometheus text) counts requests by route template and status,
    transactions written by kind, and reads the pending count and the pool."""
    body = transfer(world, world.alice, world.bob, 5)
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    await expect(await api.get(f"/v1/transactions/{body['id']}", headers=world.alice.auth), 200)
    response = await api.get("/metrics")
    text = await response.text()
    assert response.status == 200
    assert (
        'timebank_http_requests_total{method="POST",route="/v1/transactions",status="201"} 1.0'
        in text
    )
    assert 'route="/v1/transactions/{id}",status="200"' in text
    assert 'timebank_transactions_posted_total{kind="exchange",state="posted"} 1.0' in text
    assert "timebank_transactions_pending " in text
    assert "timebank_database_pool_connections " in text
