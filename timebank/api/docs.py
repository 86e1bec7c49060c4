"""The contract, published: the OpenAPI 3.1 document generated from the declared
operations, and a documentation page rendered from it on the server (no script,
no CDN: it works on a closed network)."""

from __future__ import annotations

import html
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from timebank.api.contract import Contract, openapi_document
from timebank.api.problems import all_codes, code_meanings

OPENAPI = web.AppKey("openapi", dict)
DOCS_HTML = web.AppKey("docs_html", str)


def service_version() -> str:
    try:
        return version("timebank")
    except PackageNotFoundError:
        return "0"


def publish(app: web.Application, contract: Contract) -> None:
    """Builds the document once and serves it with its page."""
    document = openapi_document(contract, version=service_version(), error_codes=code_meanings())
    app[OPENAPI] = document
    app[DOCS_HTML] = render_page(document)
    app.router.add_get("/v1/openapi.json", openapi_json)
    app.router.add_get("/v1/docs", docs_page)


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of /v1."""
    return web.json_response(request.app[OPENAPI], headers={"Cache-Control": "max-age=60"})


async def docs_page(request: web.Request) -> web.Response:
    """The API's documentation as one HTML page."""
    return web.Response(text=request.app[DOCS_HTML], content_type="text/html", charset="utf-8")


STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;color:#1b1b1b}
h2{border-bottom:2px solid #1b1b1b;margin-top:2.5rem}
h3{font-size:1.05rem;margin-top:1.75rem}
.method{display:inline-block;min-width:4.5rem;font-weight:700}
code,pre{font:14px/1.4 ui-monospace,monospace;background:#f2f2f2}
pre{padding:.75rem;overflow:auto}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:.25rem .5rem;text-align:left}
a{color:#0645ad}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False)


def render_page(document: dict[str, Any]) -> str:
    info = document["info"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_e(info['title'])} {_e(info['version'])}</title><style>{STYLE}</style>",
        f"</head><body><main><h1>{_e(info['title'])} <small>{_e(info['version'])}</small></h1>",
        f"<p>{_e(info['description'])}</p>",
        "<p>Machine-readable: <a href='/v1/openapi.json'>/v1/openapi.json</a>. Send the access "
        "token from <code>POST /v1/auth/token</code> as <code>Authorization: Bearer</code>.</p>",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            by_tag.setdefault(operation["tags"][0], []).append((method, path, operation))
    for tag, operations in by_tag.items():
        parts.append(f"<h2>{_e(tag)}</h2>")
        for method, path, operation in operations:
            parts.append(_render_operation(method, path, operation))
    parts.append("<h2>Error codes</h2><table><tr><th>code</th><th>status</th><th>meaning</th></tr>")
    meanings = code_meanings()
    for code, status in sorted(all_codes().items()):
        parts.append(
            f"<tr><td><code>{_e(code)}</code></td><td>{status}</td>"
            f"<td>{_e(meanings.get(code, ''))}</td></tr>"
        )
    parts.append("</table><h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(
            f"<h3 id='schema-{_e(name)}'>{_e(name)}</h3><pre>{_e(_schema_text(schema))}</pre>"
        )
    parts.append("</main></body></html>")
    return "".join(parts)


def _render_operation(method: str, path: str, operation: dict[str, Any]) -> str:
    parts = [
        f"<h3 id='{_e(operation['operationId'])}'><span class='method'>{_e(method.upper())}</span>"
        f"<code>{_e(path)}</code></h3>",
        f"<p><strong>{_e(operation['summary'])}</strong></p>",
        f"<p>{_e(operation['description'])}</p>",
    ]
    if operation.get("security") == []:
        parts.append("<p>No access token needed.</p>")
    if operation["parameters"]:
        parts.append("<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>")
        for parameter in operation["parameters"]:
            parts.append(
                f"<tr><td><code>{_e(parameter['name'])}</code>"
                f"{'' if parameter['required'] else ' (optional)'}</td>"
                f"<td>{_e(parameter['in'])}</td>"
                f"<td><code>{_e(json.dumps(parameter['schema']))}</code></td></tr>"
            )
        parts.append("</table>")
    if "requestBody" in operation:
        for content_type, content in operation["requestBody"]["content"].items():
            parts.append(f"<p>Body ({_e(content_type)}): {_reference(content['schema'])}</p>")
    parts.append("<table><tr><th>status</th><th>answer</th></tr>")
    for status, response in operation["responses"].items():
        contents: list[dict[str, Any]] = list(response.get("content", {}).values())
        schema = contents[0].get("schema") if contents else None
        answer = _reference(schema) if schema else ""
        parts.append(
            f"<tr><td>{_e(status)}</td><td>{_e(response['description'])} {answer}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _reference(schema: dict[str, Any]) -> str:
    reference = schema.get("$ref")
    if reference is None:
        return f"<code>{_e(json.dumps(schema))}</code>"
    name = reference.rsplit("/", 1)[-1]
    return f"<a href='#schema-{_e(name)}'>{_e(name)}</a>"
