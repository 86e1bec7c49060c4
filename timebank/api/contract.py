"""The API's contract in one place: each operation is declared once, with its
request and response models, and that declaration both serves the route
(parsing and validating the body and query with pydantic) and generates the
OpenAPI 3.1 document. There is no second, hand-kept copy of the contract."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from pydantic.json_schema import models_json_schema

from timebank.api.authentication import authenticate
from timebank.api.problems import PROBLEM_CONTENT_TYPE, status_for
from timebank.auth.client_ids import CLIENT_ID_PATTERN
from timebank.errors import TimebankError
from timebank.ledger.errors import ValidationError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Model = TypeVar("Model", bound=pydantic.BaseModel)

BODY = web.RequestKey("body", pydantic.BaseModel)
QUERY = web.RequestKey("query", pydantic.BaseModel)
JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
VALIDATION_ERRORS_SHOWN_MAX = 20
PATH_PARAMETER = re.compile(r"{(\w+)}")


class Problem(pydantic.BaseModel):
    """An RFC 9457 problem document; `code` is stable and names the refusal."""

    model_config = pydantic.ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    description: str
    handler: Handler
    body: type[pydantic.BaseModel] | None
    query: type[pydantic.BaseModel] | None
    # Status -> model of the body (None: no body).
    responses: Mapping[int, type[pydantic.BaseModel] | None]
    # The error codes it can answer with, beside the ones every operation has.
    errors: tuple[str, ...]
    public: bool
    body_required: bool = True
    form_body: bool = False
    # Status -> media type of a text body (e.g. text/csv), beside JSON models.
    text_responses: Mapping[int, str] = field(default_factory=dict)
    path_schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)


# Path parameters by name: what they hold.
PATH_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "slug": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
    "id": {"type": "string", "format": "uuid"},
    "organization_id": {"type": "string", "format": "uuid"},
    "client_id": {"type": "string", "pattern": CLIENT_ID_PATTERN},
    "subscription_id": {"type": "string", "format": "uuid"},
}


def body_of(request: web.Request, model: type[Model]) -> Model:
    """The request's validated body, as the operation declared it."""
    value = request[BODY]
    assert isinstance(value, model), f"the operation declares {type(value).__name__}"
    return value


def query_of(request: web.Request, model: type[Model]) -> Model:
    value = request[QUERY]
    assert isinstance(value, model), f"the operation declares {type(value).__name__}"
    return value


def respond(model: pydantic.BaseModel, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=model.model_dump_json(by_alias=True),
        status=status,
        content_type=JSON_CONTENT_TYPE,
        headers=headers or None,
    )


def validation_error(error: pydantic.ValidationError, where: str) -> ValidationError:
    """pydantic's findings as our validation_error: where and what, never the input."""
    errors = [
        {"location": [where, *map(str, item["loc"])], "message": item["msg"]}
        for item in error.errors(include_url=False, include_input=False)
    ][:VALIDATION_ERRORS_SHOWN_MAX]
    first = errors[0] if errors else {"location": [where], "message": "invalid"}
    detail = f"{'.'.join(first['location'])}: {first['message']}"
    return ValidationError(detail, errors=errors)


async def _parse_body(request: web.Request, model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    if request.content_type != JSON_CONTENT_TYPE:
        raise UnsupportedMediaType(f"send the body as {JSON_CONTENT_TYPE}")
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as error:
        raise validation_error(error, "body") from None


def _parse_query(request: web.Request, model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except pydantic.ValidationError as error:
        raise validation_error(error, "query") from None


class UnsupportedMediaType(TimebankError):
    """The body is not JSON."""

    code = "unsupported_media_type"
    title = "The body must be JSON"


class Contract:
    """The operations of the API, in the order they are declared."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def operation(
        self,
        method: str,
        path: str,
        *,
        tag: str,
        summary: str,
        responses: Mapping[int, type[pydantic.BaseModel] | None],
        body: type[pydantic.BaseModel] | None = None,
        query: type[pydantic.BaseModel] | None = None,
        errors: tuple[str, ...] = (),
        public: bool = False,
        body_required: bool = True,
        form_body: bool = False,
        text_responses: Mapping[int, str] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declares an operation. `form_body`: the handler reads the body itself,
        as a form (RFC 6749) or JSON, and validates it with `body`."""

        def declare(handler: Handler) -> Handler:
            async def parsed(request: web.Request) -> web.StreamResponse:
                if not public:
                    # Who asks comes first: a stranger learns nothing, not even
                    # what is wrong with their request.
                    authenticate(request)
                if form_body:
                    pass
                elif body is not None and not body_required and not request.body_exists:
                    request[BODY] = body.model_validate({})
                elif body is not None:
                    request[BODY] = await _parse_body(request, body)
                if query is not None:
                    request[QUERY] = _parse_query(request, query)
                return await handler(request)

            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    operation_id=handler.__name__,
                    tag=tag,
                    summary=summary,
                    description=(handler.__doc__ or "").strip(),
                    handler=parsed,
                    body=body,
                    query=query,
                    responses=responses,
                    errors=errors,
                    public=public,
                    body_required=body_required,
                    form_body=form_body,
                    text_responses=dict(text_responses or {}),
                )
            )
            return handler

        return declare

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(operation.method, operation.path, operation.handler)
            for operation in self.operations
        ]


def _error_codes(operation: Operation) -> list[str]:
    codes = list(operation.errors)
    if not operation.public:
        codes += ["unauthenticated", "forbidden"]
    if operation.body is not None or operation.query is not None:
        codes.append("validation_error")
    if operation.body is not None:
        codes += ["unsupported_media_type", "payload_too_large", "request_timeout"]
    if PATH_PARAMETER.search(operation.path):
        codes.append("not_found")
    codes += ["database_unavailable", "too_many_connections", "internal_error"]
    return list(dict.fromkeys(codes))


def openapi_document(
    contract: Contract, *, version: str, error_codes: Mapping[str, str]
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the contract; `error_codes` gives each stable
    code its one-line meaning."""
    models: list[tuple[type[pydantic.BaseModel], Any]] = [(Problem, "serialization")]
    for operation in contract.operations:
        if operation.body is not None:
            models.append((operation.body, "validation"))
        models += [
            (model, "serialization") for model in operation.responses.values() if model is not None
        ]
    references, top = models_json_schema(
        list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in contract.operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation_object(
            operation, references, error_codes
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Timebank API",
            "version": version,
            "description": (
                "A double-entry ledger of hours and local-currency credits. Amounts are "
                "integers in the unit's smallest step (minutes for time, cents for a "
                "currency). Every refusal is an RFC 9457 problem document with a stable "
                "`code`."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }


def _operation_object(
    operation: Operation, references: Mapping[Any, Any], error_codes: Mapping[str, str]
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": PATH_PARAMETER_SCHEMAS.get(name, {"type": "string"}),
        }
        for name in PATH_PARAMETER.findall(operation.path)
    ]
    if operation.query is not None:
        schema = operation.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, property_schema in schema.get("properties", {}).items():
            parameter = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {key: value for key, value in property_schema.items() if key != "title"},
            }
            if "description" in property_schema:
                parameter["description"] = property_schema["description"]
            parameters.append(parameter)
    responses: dict[str, Any] = {}
    for status, model in operation.responses.items():
        response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if model is not None:
            response["content"] = {
                JSON_CONTENT_TYPE: {"schema": references[(model, "serialization")]}
            }
        if status in operation.text_responses:
            response["content"] = {operation.text_responses[status]: {"schema": {"type": "string"}}}
        responses[str(status)] = response
    problem_schema = references[(Problem, "serialization")]
    by_status: dict[int, list[str]] = {}
    for code in _error_codes(operation):
        by_status.setdefault(int(status_for(code)), []).append(code)
    for status, codes in sorted(by_status.items()):
        if str(status) in responses:
            continue
        responses[str(status)] = {
            "description": "; ".join(f"`{code}`: {error_codes.get(code, code)}" for code in codes),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_schema}},
        }
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": operation.description,
        "parameters": parameters,
        "responses": responses,
    }
    if operation.body is not None:
        body_schema = {"schema": references[(operation.body, "validation")]}
        content = {JSON_CONTENT_TYPE: body_schema}
        if operation.form_body:
            content = {FORM_CONTENT_TYPE: body_schema, **content}
        document["requestBody"] = {"required": operation.body_required, "content": content}
    if operation.public:
        document["security"] = []
    return document
