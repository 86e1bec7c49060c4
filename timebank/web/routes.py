"""Serves the web front from `static/`: the page and service worker at fixed paths
(revalidated on every visit), every other file under `/static/<version>/`, where the
version is a hash of all the files, so those can be cached for good (immutable).

The files are read and gzipped once, when the application is built: they are a few
dozen kilobytes, and a phone on a poor connection should get the smallest answer
without the service compressing it again on each request."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

import segno
from aiohttp import web

STATIC_DIRECTORY = Path(__file__).resolve().parent / "static"
# Files served at a fixed path (their own URL must not change between versions).
PAGE = "index.html"
SERVICE_WORKER = "sw.js"
MANIFEST = "manifest.webmanifest"
ROOT_FILES = {"/": PAGE, "/sw.js": SERVICE_WORKER, "/manifest.webmanifest": MANIFEST}
VERSION_PLACEHOLDER = b"__VERSION__"
# In the service worker: the list of files it caches for offline use.
FILES_PLACEHOLDER = b"__FILES__"
VERSION_LENGTH = 12
# Smaller files gain nothing from gzip once headers are counted.
COMPRESSION_SIZE_MIN_BYTES = 256
STATIC_FILES_MAX = 200
CACHE_FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# Everything from our own origin, nothing inline, no eval, no framing, and DOM
# writes limited to what Trusted Types allow: the front never writes HTML strings,
# and its one policy ("timebank") passes only the service worker's URL.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types timebank",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The camera, for reading a merchant's payment code on this page only.
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as served: its bytes, gzipped bytes when smaller, and its type."""

    body: bytes
    gzipped: bytes | None
    content_type: str


@dataclass(frozen=True, slots=True)
class Assets:
    version: str
    files: dict[str, Asset]


FRONT_ASSETS = web.AppKey("front_assets", Assets)


def load_assets(directory: Path = STATIC_DIRECTORY) -> Assets:
    """Every file under `directory`, by relative path; the version hashes them all."""
    paths = sorted(path for path in directory.rglob("*") if path.is_file())
    assert 0 < len(paths) <= STATIC_FILES_MAX, f"{len(paths)} static files"
    contents = {path.relative_to(directory).as_posix(): path.read_bytes() for path in paths}
    digest = hashlib.sha256()
    for name, body in contents.items():
        digest.update(name.encode() + b"\x00" + hashlib.sha256(body).digest())
    version = digest.hexdigest()[:VERSION_LENGTH]
    versioned = [name for name in contents if name not in ROOT_FILES.values()]
    files = {}
    for name, body in contents.items():
        if name in ROOT_FILES.values():
            body = body.replace(VERSION_PLACEHOLDER, version.encode())
        if name == SERVICE_WORKER:
            body = body.replace(FILES_PLACEHOLDER, json.dumps(versioned).encode())
        files[name] = _asset(name, body)
    return Assets(version, files)


def _asset(name: str, body: bytes) -> Asset:
    suffix = Path(name).suffix
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
    assert content_type is not None, f"no content type for {name}"
    compressed = None
    if len(body) >= COMPRESSION_SIZE_MIN_BYTES and suffix != ".png":
        # mtime=0: the same file always gives the same bytes.
        candidate = gzip.compress(body, compresslevel=9, mtime=0)
        compressed = candidate if len(candidate) < len(body) else None
    return Asset(body, compressed, content_type)


def _answer(request: web.Request, asset: Asset, cache_control: str, etag: str) -> web.Response:
    headers = {
        **SECURITY_HEADERS,
        "Cache-Control": cache_control,
        "ETag": f'"{etag}"',
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = asset.content_type
    return web.Response(body=body, headers=headers)


async def root_file(request: web.Request) -> web.Response:
    """The page, service worker and manifest: revalidated each time (an ETag of the
    version answers 304 when nothing changed), so a new version is seen at once."""
    assets = request.app[FRONT_ASSETS]
    asset = assets.files[ROOT_FILES[request.path]]
    return _answer(request, asset, REVALIDATE, assets.version)


async def versioned_file(request: web.Request) -> web.Response:
    """A file of this version, cached for good; another version's is not found
    (an old page asking for it reloads from `/`)."""
    assets = request.app[FRONT_ASSETS]
    name = request.match_info["name"]
    asset = assets.files.get(name)
    if (
        request.match_info["version"] != assets.version
        or asset is None
        or name in ROOT_FILES.values()
    ):
        raise web.HTTPNotFound()
    return _answer(request, asset, CACHE_FOREVER, assets.version)


# A payment code: the app's own link to pay an account (optionally an amount of a
# unit). Only such links are drawn, so the route is no general QR service.
PAY_CODE = re.compile(
    r"https?://[A-Za-z0-9.:\[\]-]{1,100}/#/pay\?to=[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"
    r"(&unit=[A-Za-z][A-Za-z0-9_-]{0,15})?(&amount=[1-9][0-9]{0,14})?"
)
PAY_CODE_MODULE_SIZE_PX = 6
PAY_CODE_QUIET_ZONE_MODULES = 4


async def pay_code(request: web.Request) -> web.Response:
    """The QR code (SVG) of a payment link (`?text=`), drawn here so that phones
    download no QR encoder; the same link answers the same bytes, cached for good."""
    text = request.query.get("text", "")
    if not PAY_CODE.fullmatch(text):
        raise web.HTTPBadRequest(text="not a payment link of this app")
    svg = io.BytesIO()
    segno.make(text, error="m").save(
        svg,
        kind="svg",
        scale=PAY_CODE_MODULE_SIZE_PX,
        border=PAY_CODE_QUIET_ZONE_MODULES,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
        title=None,
    )
    asset = _asset("code.svg", svg.getvalue())
    return _answer(request, asset, CACHE_FOREVER, hashlib.sha256(asset.body).hexdigest()[:16])


def add_front(app: web.Application) -> None:
    """Registers the web front's routes (`/`, `/sw.js`, `/manifest.webmanifest`,
    `/static/<version>/...`, `/pay-code.svg`) on `app`."""
    app[FRONT_ASSETS] = load_assets()
    for path in ROOT_FILES:
        app.router.add_get(path, root_file)
    app.router.add_get("/static/{version}/{name:.+}", versioned_file)
    app.router.add_get("/pay-code.svg", pay_code)
