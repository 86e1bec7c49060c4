"""The web front as the service serves it: the page and service worker revalidated
on each visit, every other file under a version that changes with the content and
cached for good, gzipped for browsers that take it, all under a strict policy; and
the one read the front needs of the API that members did not have (their pending
exchanges, through the journal filtered by their own account)."""

from __future__ import annotations

import gzip
import json
import re

from tests.api.conftest import ApiClient
from tests.api.world import HOURS, World, expect, transfer
from timebank.web.routes import CONTENT_SECURITY_POLICY, STATIC_DIRECTORY, load_assets

VERSIONED = re.compile(r'/static/([0-9a-f]{12})/js/main\.js"')


async def test_the_page_is_revalidated_and_names_its_versioned_files(api: ApiClient) -> None:
    """`/` is HTML under the CSP, `no-cache` with the version as ETag (304 when
    unchanged), and refers to its script under that same version."""
    response = await api.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    page = await response.text()
    match = VERSIONED.search(page)
    assert match is not None
    version = match.group(1)
    assert response.headers["ETag"] == f'"{version}"'
    assert "__VERSION__" not in page
    again = await api.get("/", headers={"If-None-Match": f'"{version}"'})
    assert again.status == 304
    worker = await api.get("/sw.js")
    assert worker.headers["Cache-Control"] == "no-cache"
    script = await worker.text()
    assert f'const VERSION = "{version}"' in script
    for name in ("js/main.js", "js/audit.js", "app.css", "icon-192.png"):
        assert f'"{name}"' in script
    assert '"index.html"' not in script
    assert "__FILES__" not in script


async def test_versioned_files_are_immutable_and_gzipped(api: ApiClient) -> None:
    """A file of this version is cached for a year, immutable, gzipped when asked
    (the same bytes once unzipped); another version's is not found."""
    assets = load_assets()
    path = f"/static/{assets.version}/js/main.js"
    zipped = await api.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.status == 200
    assert zipped.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert zipped.headers["Content-Type"] == "text/javascript; charset=utf-8"
    body = await zipped.read()
    assert gzip.decompress(body) == assets.files["js/main.js"].body
    plain = await api.get(path, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == assets.files["js/main.js"].body
    stale = await api.get("/static/000000000000/js/main.js")
    assert stale.status == 404
    hidden = await api.get(f"/static/{assets.version}/index.html")
    assert hidden.status == 404


async def test_the_api_and_health_paths_are_untouched(api: ApiClient) -> None:
    """The front's routes take nothing from /v1, /health or /metrics."""
    assert (await api.get("/health/live")).status == 200
    assert (
        (await api.get("/v1/openapi.json")).headers["Content-Type"].startswith("application/json")
    )
    missing = await api.get("/v1/nothing-here")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")


async def test_a_member_reads_the_pending_exchanges_of_their_own_account(
    api: ApiClient, world: World
) -> None:
    """Filtered by an account of theirs, a member reads the journal (what waits for
    them); unfiltered, or filtered by someone else's account, it stays forbidden."""
    proposal = transfer(world, world.bob, world.alice, 30, pending=True)
    await expect(await api.post("/v1/transactions", json=proposal, headers=world.alice.auth), 201)
    journal = f"/v1/communities/{world.slug}/transactions"
    own = await expect(
        await api.get(
            f"{journal}?account={world.bob.accounts[HOURS]}&state=pending",
            headers=world.bob.auth,
        ),
        200,
    )
    assert [item["id"] for item in own["items"]] == [proposal["id"]]
    for query in ("", f"?account={world.alice.accounts[HOURS]}", f"?account={proposal['id']}"):
        refused = await expect(await api.get(journal + query, headers=world.bob.auth), 403)
        assert refused["code"] == "forbidden"


# `import ... from "./x.js";`, on one line or several.
STATIC_IMPORT = re.compile(r'^import [^;]*? from "\./([\w-]+\.js)";$', re.MULTILINE)
PRELOAD = re.compile(r'<link rel="modulepreload" href="/static/__VERSION__/js/([\w-]+\.js)">')


def test_the_page_preloads_every_module_the_app_imports_and_no_other() -> None:
    """The modules main.js imports, directly or not, are named in the page, so that
    the browser fetches them at once instead of one import level at a time; the
    screens loaded when opened (dynamic imports: the treasurer's dashboard, the
    pools, paying with a code) are not."""
    assets = load_assets()

    def imports_of(name: str) -> set[str]:
        return set(STATIC_IMPORT.findall(assets.files[f"js/{name}"].body.decode()))

    needed: set[str] = set()
    frontier = imports_of("main.js")
    while frontier:
        needed |= frontier
        frontier = {found for name in frontier for found in imports_of(name)} - needed
    page = (STATIC_DIRECTORY / "index.html").read_text()
    assert set(PRELOAD.findall(page)) == needed
    assert needed.isdisjoint({"audit.js", "pools.js", "pay.js"})


async def test_the_manifest_names_icons_that_are_served(api: ApiClient) -> None:
    """The PWA manifest is JSON of its own type, starts at the app, and each icon it
    names is served as an image."""
    response = await api.get("/manifest.webmanifest")
    assert response.headers["Content-Type"] == "application/manifest+json"
    manifest = json.loads(await response.text())
    assert (manifest["start_url"], manifest["display"]) == ("/#/home", "standalone")
    sizes = set()
    for icon in manifest["icons"]:
        served = await api.get(icon["src"])
        assert served.status == 200
        assert served.headers["Content-Type"] == icon["type"]
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes


async def test_a_payment_link_is_drawn_as_a_qr_code_and_nothing_else(api: ApiClient) -> None:
    """`/pay-code.svg?text=` draws the app's payment links (an account, a unit, an
    amount) as an SVG QR code, cached for good; any other text is refused."""
    link = "http://127.0.0.1:8080/#/pay?to=3f047631-ed60-4144-901c-385859a84364&unit=HOUR&amount=60"
    response = await api.get("/pay-code.svg", params={"text": link})
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    svg = await response.text()
    assert svg.startswith("<svg")
    assert "<path" in svg
    again = await api.get("/pay-code.svg", params={"text": link})
    assert await again.text() == svg
    for text in (
        "https://evil.example/login",
        link + "&memo=x",
        link.replace("to=3f04", "to=XX04"),
        "",
    ):
        refused = await api.get("/pay-code.svg", params={"text": text})
        assert refused.status == 400, text
